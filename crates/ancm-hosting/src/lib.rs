//! What makes the ASP.NET Core Module a module and not just a proxy: it reads the
//! `<aspNetCore>` element of web.config ([`config`]), owns the backend process
//! ([`supervisor`]), and answers for it when it is offline or failing ([`app_offline`],
//! 502.5 / 500.0 / 500.32 / 503 pages). [`application::Application::launch_plan`] shows what
//! it would start and [`application::Application::start`] starts it ahead of the first
//! request (what `ancm doctor` uses); [`status`] tells a gateway what the processes are
//! doing, for its metrics and health checks.
//!
//! # Where ancm-rs deliberately differs from ANCM
//!
//! * Readiness is a listener owned by the child or its descendants on IPv4 **or IPv6**
//!   loopback (protocol §8.3).
//! * Rapid-fail protection counts unexpected exits in a sliding 60-second window (§8.4).
//! * On Unix each child gets its own process group and SIGINT/SIGTERM where ANCM sends
//!   Ctrl+Break; on Windows a kill-on-close job object; on Linux the parent-death signal
//!   kills each child with a gateway that dies (§8.5, §2.1).
//! * `hostingModel="inprocess"` runs out-of-process with one warning (§8.6).
//! * A web.config change recycles with no downtime: the new child is started and made ready
//!   before the old one is stopped; only a change of the parsed configuration recycles
//!   (§8.7).
//! * web.config's `<requestLimits>` is read for the gateway's request limits, IIS's defaults
//!   where it is silent; `maxAllowedContentLength` is 64-bit (§3.4, §8.16).
//! * An `app_offline.htm` linking out of the site folder or over 1 MiB is not served (§8.21).
//! * The stdout log is appended to, never through a link, mode 0640; optionally only the
//!   newest files are kept and each is capped in size ([`supervisor::StdoutLogRetention`],
//!   §8.22).
//! * On Unix a `%VAR%` value in `arguments` is one argument (§8.23).
//! * A folder published for IIS runs on any OS ([`dotnet`]): a Windows apphost
//!   (`.\MyApp.exe`) that cannot run here becomes `dotnet MyApp.dll` (§8.30); `dotnet` is
//!   found through `DOTNET_ROOT_<ARCH>`, `DOTNET_ROOT`, `PATH` and the install folders, and
//!   Windows-style paths among the arguments are made native on Unix (§8.31); a
//!   self-contained Windows publish is refused with `500.32` (§8.32).
//! * Backends can be health-checked ([`supervisor::HealthCheck`]): an unhealthy one is
//!   replaced through the zero-downtime recycle while healthy slots take the requests
//!   (§8.34).
//! * IIS application pool recycling policies ([`supervisor::RecyclePolicy`]: running time,
//!   requests, memory, times of day in UTC) recycle with no downtime and are never counted
//!   by rapid-fail protection (§8.35).
//! * The handler setting `preload` starts the backends with the application (§8.36), and
//!   [`application::Application::reload_web_config`] re-reads web.config on demand
//!   (SIGHUP, §8.38).
//! * With the handler setting `backendTransport` = `unix` the children are reached over a
//!   Unix-domain socket named in `ANCM_UNIX_SOCKET` (§8.42); readiness is checked at once,
//!   then every 1–10 ms, where ANCM checks every 250 ms (§8.43).
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod app_offline;
pub mod application;
pub mod config;
pub mod debug_log;
pub mod dotnet;
mod file_stamp;
pub mod status;
pub mod supervisor;
mod sync;

pub use application::{
    Application, ApplicationError, ApplicationLayer, ApplicationOptions, ApplicationService,
};

// The README's examples (what crates.io shows) must keep compiling and passing.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
