//! `crate = ".."` for a platform crate that re-exports faas-core under
//! another path: the expansion names only that path.

mod platform {
    pub mod faas {
        pub use faas_core::*;
    }
}

// Every generated path goes through `crate::platform::faas` (the expansion
// unit tests check that `faas_core` is not named at all); the definition's
// type is the re-exported one.
mod isolated {
    use crate::platform::faas::{Json, TriggerSpec};
    use faas_macros::function;

    #[function(crate = "crate::platform::faas", trigger = http(path = "/double"), timeout = "2s", max_attempts = 2)]
    pub async fn double(Json(n): Json<i64>) -> Json<i64> {
        Json(n * 2)
    }

    pub fn check() {
        let definition = __faas_function_double::definition();
        assert_eq!(definition.name(), "double");
        assert_eq!(definition.meta().triggers, vec![TriggerSpec::http("/double")]);
    }
}

fn main() {
    isolated::check();
    let definition: platform::faas::FunctionDefinition = isolated::__faas_function_double::definition();
    assert_eq!(definition.policy().retry().max_attempts, 2);
}
