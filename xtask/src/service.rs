//! Real parts that tests need, run by `cargo xtask` on loopback.
//!
//! A service is one module implementing [`Service`]: the Kubernetes control
//! plane ([`crate::cluster::ControlPlane`]) today, brokers and databases
//! alike. `cargo xtask test` starts the services a tier needs with
//! [`Services::start`], passes their [`Service::env`] to the tests and stops
//! what it started, also when tests fail or on Ctrl-C.

use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::output;

/// A real part (server, broker, control plane) that xtask runs for tests.
pub(crate) trait Service {
    /// Short name for progress lines (`cluster`, `nats`, ...).
    fn name(&self) -> &str;

    /// Whether it already runs and answers (started earlier, e.g. by
    /// `cargo xtask cluster up`). A running service is used as it is and
    /// left running.
    fn is_running(&self) -> bool;

    /// Starts it and returns once it is ready for tests. On error, whatever
    /// was started is stopped again.
    fn start(&self) -> Result<()>;

    /// Stops what [`Service::start`] started and removes its state.
    fn stop(&self) -> Result<()>;

    /// The environment variables tests use to reach it.
    fn env(&self) -> Vec<(String, String)>;

    /// Its log files, shown when tests that used it fail.
    fn logs(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// The services of one run; those it started are stopped when it is dropped
/// (normal end, error, panic or interrupt).
#[derive(Default)]
pub(crate) struct Services {
    running: Vec<(Box<dyn Service>, bool)>,
    keep: bool,
}

impl Services {
    /// Leaves the services this run started running at its end.
    pub(crate) fn keep_running(&mut self, keep: bool) {
        self.keep = keep;
    }

    /// Makes sure `service` runs: reuses it when it already runs, else
    /// starts it (and will stop it at the end).
    pub(crate) fn start(&mut self, service: Box<dyn Service>) -> Result<()> {
        if service.is_running() {
            output::step(format!(
                "{}: already running; using it and leaving it running",
                service.name()
            ));
            self.running.push((service, false));
            return Ok(());
        }
        service
            .start()
            .with_context(|| format!("cannot start {}", service.name()))?;
        self.running.push((service, true));
        Ok(())
    }

    /// The environment of every running service.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .flat_map(|(service, _)| service.env())
            .collect()
    }

    /// Prints the last `lines` lines of every service's logs (CI keeps no
    /// files, so a failure must carry its evidence in the output).
    pub(crate) fn print_logs(&self, lines: usize) {
        for (service, _) in &self.running {
            for log in service.logs() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                output::step(format!("last lines of {}", log.display()));
                for line in &all[all.len().saturating_sub(lines)..] {
                    output::info(line);
                }
            }
        }
    }

    /// Stops, newest first, the services this run started.
    pub(crate) fn stop(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some((service, started)) = self.running.pop() {
            if !started {
                continue;
            }
            if self.keep {
                output::step(format!(
                    "{}: left running (--keep-services)",
                    service.name()
                ));
                continue;
            }
            if let Err(err) = service.stop() {
                output::warn(format!("cannot stop {}: {err:#}", service.name()));
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// Records what was done to it; `running` says whether it already ran.
    struct Recorder {
        name: &'static str,
        running: bool,
        log: Rc<RefCell<Vec<String>>>,
    }

    impl Service for Recorder {
        fn name(&self) -> &str {
            self.name
        }
        fn is_running(&self) -> bool {
            self.running
        }
        fn start(&self) -> Result<()> {
            self.log.borrow_mut().push(format!("start {}", self.name));
            Ok(())
        }
        fn stop(&self) -> Result<()> {
            self.log.borrow_mut().push(format!("stop {}", self.name));
            Ok(())
        }
        fn env(&self) -> Vec<(String, String)> {
            vec![(self.name.to_uppercase(), "1".into())]
        }
    }

    fn recorder(
        name: &'static str,
        running: bool,
        log: &Rc<RefCell<Vec<String>>>,
    ) -> Box<Recorder> {
        Box::new(Recorder {
            name,
            running,
            log: Rc::clone(log),
        })
    }

    #[test]
    fn only_services_this_run_started_are_stopped_newest_first() {
        let log = Rc::new(RefCell::new(Vec::new()));
        {
            let mut services = Services::default();
            services.start(recorder("cluster", false, &log)).unwrap();
            services.start(recorder("shared", true, &log)).unwrap();
            services.start(recorder("nats", false, &log)).unwrap();
            assert_eq!(services.env().len(), 3, "a reused service's env counts too");
        }
        assert_eq!(
            *log.borrow(),
            ["start cluster", "start nats", "stop nats", "stop cluster"]
        );
    }

    #[test]
    fn kept_services_are_left_running() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut services = Services::default();
        services.keep_running(true);
        services.start(recorder("cluster", false, &log)).unwrap();
        services.stop().unwrap();
        assert_eq!(*log.borrow(), ["start cluster"]);
    }
}
