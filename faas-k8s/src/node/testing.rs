//! A backend for unit tests: it runs nothing, answers exec with the command's first word, and
//! serves a fixed log.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::backend::{
    BackendError, Capacity, LogOptions, LogStream, PodBackend, PodEvents, PodKey, PodLaunch,
    PodRuntimeStatus,
};

/// Runs nothing; `exec(["true"])` succeeds, any other command fails; every container's log is
/// `log`.
pub(crate) struct StaticBackend {
    pub(crate) log: &'static str,
}

#[async_trait]
impl PodBackend for StaticBackend {
    fn name(&self) -> &str {
        "static"
    }
    fn capacity(&self) -> Capacity {
        Capacity::new("1", "1Gi", 10)
    }
    async fn create(&self, pod: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
        Err(BackendError::NotFound(pod.key))
    }
    async fn update(&self, _pod: PodLaunch) -> Result<(), BackendError> {
        Ok(())
    }
    async fn restart_container(&self, key: &PodKey, _c: &str) -> Result<(), BackendError> {
        Err(BackendError::NotFound(key.clone()))
    }
    async fn delete(&self, _key: &PodKey, _grace: Duration) -> Result<(), BackendError> {
        Ok(())
    }
    async fn status(&self, _key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        Ok(None)
    }
    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        Ok(Vec::new())
    }
    async fn logs(
        &self,
        key: &PodKey,
        container: &str,
        _opts: LogOptions,
    ) -> Result<LogStream, BackendError> {
        if container != "app" {
            return Err(BackendError::NotFound(key.clone()));
        }
        let chunk: std::io::Result<Bytes> = Ok(Bytes::from_static(self.log.as_bytes()));
        Ok(Box::pin(futures::stream::iter([chunk])))
    }
    async fn exec(&self, _key: &PodKey, _c: &str, cmd: Vec<String>) -> Result<i32, BackendError> {
        Ok(if cmd == ["true"] { 0 } else { 1 })
    }
    fn events(&self) -> PodEvents {
        Box::pin(futures::stream::pending())
    }
}
