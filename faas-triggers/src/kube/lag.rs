//! [`KubeLag`]: the changes a kube trigger received and has not handled yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use faas_core::trigger::{Lag, LagSource};

/// The work a [`KubeTrigger`](super::KubeTrigger) holds: changes received
/// from the API server whose calls have not succeeded yet (waiting, running,
/// or waiting for a redelivery). It reads the running trigger's counter, so
/// it is zero until the trigger runs; a trigger that runs as a connector
/// beside the gateway is where it is meaningful.
#[derive(Debug, Clone)]
pub struct KubeLag {
    function: String,
    pending: Arc<AtomicU64>,
}

impl KubeLag {
    pub(crate) fn new(function: String, pending: Arc<AtomicU64>) -> Self {
        KubeLag { function, pending }
    }
}

#[async_trait]
impl LagSource for KubeLag {
    fn function(&self) -> &str {
        &self.function
    }

    async fn lag(&self) -> Result<Lag, faas_core::Error> {
        Ok(Lag::pending(self.pending.load(Ordering::Relaxed)))
    }
}
