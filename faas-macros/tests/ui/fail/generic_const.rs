use faas_macros::function;

#[function]
async fn repeat<const TIMES: usize>(body: String) -> String {
    body.repeat(TIMES)
}

fn main() {}
