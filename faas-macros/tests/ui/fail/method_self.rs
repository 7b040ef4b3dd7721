use faas_macros::function;

struct Greeter {
    greeting: String,
}

impl Greeter {
    #[function]
    async fn greet(&self, name: String) -> String {
        format!("{} {name}", self.greeting)
    }
}

fn main() {
    let _ = Greeter { greeting: String::new() };
}
