//! Command-line interface: the verbs and flags of the `halo` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// halo: VRRP failover of a virtual IP and an HTTP reverse proxy, in one binary.
#[derive(Debug, Parser)]
#[command(name = "halo", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing syntax), e.g. `info`, `halo=debug`. Overrides HALO_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from: native TOML, or the nginx and keepalived files unchanged.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigSource {
    /// Native TOML configuration.
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with_all = ["nginx", "keepalived"])]
    pub config: Option<PathBuf>,
    /// An nginx.conf to run unchanged (the HTTP side).
    #[arg(long, value_name = "FILE")]
    pub nginx: Option<PathBuf>,
    /// A keepalived.conf to run unchanged (the VRRP side).
    #[arg(long, value_name = "FILE")]
    pub keepalived: Option<PathBuf>,
    /// nginx's prefix: relative paths in nginx.conf (`root html`, log files) resolve against it.
    /// Default: the directory that holds the nginx.conf (as with Debian's and Docker's nginx,
    /// whose prefix and configuration directory are both /etc/nginx).
    #[arg(long, short = 'p', value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Read files under FROM from TO instead (`--path-map /etc/nginx=./conf`), so that a
    /// configuration with absolute paths can run unchanged from another directory.
    #[arg(long, value_name = "FROM=TO")]
    pub path_map: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run halo in the foreground.
    Run {
        #[command(flatten)]
        source: ConfigSource,
        /// Write the process id here (for `halo reload`).
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Write the live state (VRRP instances) as JSON here on every change (for `halo status`).
        #[arg(long, value_name = "FILE")]
        state_file: Option<PathBuf>,
    },
    /// Check the configuration: exit 1 on errors, 0 when valid; warnings are printed either way.
    Check {
        #[command(flatten)]
        source: ConfigSource,
        /// Accepted for nginx habits (`nginx -t`); same as `check`.
        #[arg(short = 't', hide = true)]
        test: bool,
    },
    /// Print the native TOML equivalent of an nginx.conf and/or keepalived.conf.
    Import {
        #[command(flatten)]
        source: ConfigSource,
    },
    /// Ask a running halo to re-read its configuration (SIGHUP through its pid file).
    Reload {
        #[arg(long, value_name = "FILE")]
        pid_file: PathBuf,
    },
    /// Show the state a running halo wrote to its state file.
    Status {
        #[arg(long, value_name = "FILE")]
        state_file: PathBuf,
    },
    /// Run with nginx's command line: -t, -T, -s SIGNAL, -p, -c, -e, -g, -V (see `halo nginx -h`).
    ///
    /// halo answers the same way when run as `nginx` (a symbolic link of that name).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Nginx {
        /// nginx's options, read by nginx's rules.
        #[arg(allow_hyphen_values = true, trailing_var_arg = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Build the seed's two-balancer topology in network namespaces and show it working.
    Demo {
        /// Run the seed's five acceptance tests instead of the live view; exit non-zero if one fails.
        #[arg(long)]
        tour: bool,
    },
}
