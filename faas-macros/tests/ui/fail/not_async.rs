use faas_macros::function;

#[function]
fn hello() -> String {
    "hello".to_owned()
}

fn main() {}
