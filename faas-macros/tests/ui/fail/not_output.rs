use faas_macros::function;

struct Receipt {
    id: u64,
}

#[function]
async fn place(body: String) -> Option<Receipt> {
    body.parse().ok().map(|id| Receipt { id })
}

fn main() {}
