//! `functions![..]` with local names, module paths, `crate::` paths and a
//! trailing comma, fed to a registry.

use faas_core::Registry;
use faas_macros::{function, functions};

#[function]
async fn local() {}

mod billing {
    pub mod jobs {
        #[faas_macros::function(name = "invoice-run", trigger = cron("0 2 * * *"))]
        pub async fn invoices() {}
    }

    #[faas_macros::function]
    pub(crate) async fn refund(body: String) -> String {
        body
    }
}

fn main() {
    let definitions = functions![local, billing::jobs::invoices, crate::billing::refund,];
    let names: Vec<&str> = definitions.iter().map(|definition| definition.name()).collect();
    assert_eq!(names, ["local", "invoice-run", "refund"]);

    let registry = Registry::try_from_iter(functions![local, billing::refund]).unwrap();
    assert_eq!(registry.len(), 2);

    let registry: Registry = functions![].into_iter().collect();
    assert!(registry.is_empty());
}
