use faas_macros::function;

#[function]
struct Hello;

fn main() {}
