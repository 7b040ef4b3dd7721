use faas_macros::function;

#[function]
async fn borrow<'a>(body: &'a str) -> String {
    body.to_owned()
}

fn main() {}
