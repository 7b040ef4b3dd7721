//! The `faasctl` command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy, call and watch faas functions on a Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "faasctl", version, about)]
#[non_exhaustive]
pub struct FaasctlArgs {
    /// The kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short, long, global = true)]
    pub namespace: Option<String>,
    /// How results are printed.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Output {
    /// Columns for people.
    Table,
    /// JSON for programs.
    Json,
    /// YAML for programs and people.
    Yaml,
}

/// A `faasctl` command.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Deploy a function (or update it), from flags or from a manifest, and wait until it is
    /// ready.
    Deploy(DeployArgs),
    /// List the functions of the namespace (or of all namespaces).
    List {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Show one function: its spec summary, status and condition.
    Describe {
        /// The function.
        name: String,
    },
    /// Call a function and print its answer; the body comes from the argument, `--file`, or
    /// stdin.
    Invoke(InvokeArgs),
    /// Set the replicas of a function.
    Scale {
        /// The function.
        name: String,
        /// The replicas wanted.
        replicas: u32,
        /// Wait until the function is ready again.
        #[arg(long)]
        wait: bool,
        /// How long to wait.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
        timeout: Duration,
    },
    /// Print a function's log.
    Logs {
        /// The function.
        name: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Only the last lines.
        #[arg(long)]
        tail: Option<usize>,
    },
    /// Remove a function, its Deployment, Service and pods.
    Remove {
        /// The function.
        name: String,
    },
}

/// `faasctl deploy`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct DeployArgs {
    /// The function's name (not with `--file`).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub name: Option<String>,
    /// A manifest of Function resources (YAML or JSON, `-` for stdin), applied server-side.
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// The image that serves it.
    #[arg(long, required_unless_present = "file")]
    pub image: Option<String>,
    /// An environment variable, `NAME=VALUE` (repeatable).
    #[arg(long = "env", short = 'e', value_parser = key_value)]
    pub env: Vec<(String, String)>,
    /// A label, `KEY=VALUE` (repeatable).
    #[arg(long = "label", short = 'l', value_parser = key_value)]
    pub labels: Vec<(String, String)>,
    /// A Secret whose keys become environment variables (repeatable).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Replicas kept without traffic.
    #[arg(long)]
    pub min: Option<u32>,
    /// The most replicas.
    #[arg(long)]
    pub max: Option<u32>,
    /// Calls in flight per replica to aim for.
    #[arg(long)]
    pub target_concurrency: Option<u32>,
    /// The deadline of one call, e.g. `10s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub call_timeout: Option<Duration>,
    /// Return without waiting for the function to be ready.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait until it is ready.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2m")]
    pub timeout: Duration,
}

/// `faasctl invoke`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct InvokeArgs {
    /// The function.
    pub name: String,
    /// The body; `-` reads stdin.
    pub data: Option<String>,
    /// Read the body from a file.
    #[arg(long, conflicts_with = "data")]
    pub file: Option<PathBuf>,
    /// A header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// The content type of the body.
    #[arg(long)]
    pub content_type: Option<String>,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

fn header(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        FaasctlArgs::command().debug_assert();
    }

    #[test]
    fn flags_parse() {
        let args = FaasctlArgs::try_parse_from([
            "faasctl", "-n", "apps", "-o", "json", "deploy", "hello", "--image", "img", "-e",
            "A=1", "--min", "1",
        ])
        .unwrap();
        assert_eq!(args.namespace.as_deref(), Some("apps"));
        assert_eq!(args.output, Output::Json);
        let Command::Deploy(deploy) = args.command else {
            panic!("deploy")
        };
        assert_eq!(deploy.env, [("A".to_owned(), "1".to_owned())]);
        assert!(
            FaasctlArgs::try_parse_from(["faasctl", "deploy", "x"]).is_err(),
            "no image"
        );
        assert!(FaasctlArgs::try_parse_from(["faasctl", "deploy", "-e", "oops", "x"]).is_err());
        let invoke =
            FaasctlArgs::try_parse_from(["faasctl", "invoke", "f", "-H", "X-A: b", "body"])
                .unwrap();
        let Command::Invoke(invoke) = invoke.command else {
            panic!("invoke")
        };
        assert_eq!(invoke.headers, [("X-A".to_owned(), "b".to_owned())]);
        assert_eq!(invoke.data.as_deref(), Some("body"));
    }
}
