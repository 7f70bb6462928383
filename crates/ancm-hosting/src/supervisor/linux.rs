//! Linux process control: children die with the gateway, even when it is killed with
//! SIGKILL and cannot stop them itself (protocol §2.1, §8.5).
//!
//! Each child asks the kernel for **SIGKILL when its parent dies** (`PR_SET_PDEATHSIG`),
//! set between fork and exec. SIGKILL rather than SIGTERM: the gateway had no chance to stop
//! the child gracefully, a SIGTERM can be ignored and leave the port taken, and Windows'
//! kill-on-close job object terminates just as hard. The signal reaches the direct child
//! only: the backend's own children (its process group, when `processPath` is a launcher or
//! a script that does not `exec`) are re-parented and keep running unless the backend takes
//! them down.
//!
//! The kernel sends the signal when the **thread** that forked the child ends, not the
//! process. A child forked from a runtime worker or blocking-pool thread that later exits
//! (Tokio retires idle blocking threads; `block_in_place` turns a worker into one) would be
//! killed while the gateway runs. So every child is forked by one thread that lives as long
//! as the process ([`spawn`]).
#![allow(unsafe_code)]

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// A spawn to run on the forking thread.
type Job = Box<dyn FnOnce() + Send>;

/// Spawns `cmd` with the parent-death signal set, from the forking thread, registered with
/// the caller's Tokio runtime.
pub(crate) async fn spawn(mut cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called. prctl(2) and getppid(2) are plain system
    // calls that neither allocate nor lock, and an io::Error made from an errno allocates
    // nothing; the closure captures only a pid.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The gateway may have died between fork and prctl: then no signal would come.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from(Errno::ESRCH));
            }
            Ok(())
        });
    }
    let runtime = tokio::runtime::Handle::current();
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // tokio::process registers the child with the runtime of the current context.
        let _entered = runtime.enter();
        // A caller that gave up drops the child, which kill_on_drop then kills.
        let _ = done.send(cmd.spawn());
    });
    let gone = || io::Error::other("the process-forking thread has ended");
    forker()?.send(job).map_err(|_| gone())?;
    result.await.map_err(|_| gone())?
}

/// The forking thread's queue; the thread is started on first use and never ends.
fn forker() -> io::Result<&'static mpsc::Sender<Job>> {
    static FORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    if let Some(jobs) = FORKER.get() {
        return Ok(jobs);
    }
    let (jobs, queue) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ancm-forker".into())
        .spawn(move || {
            for job in queue {
                job();
            }
        })?;
    // Two first callers at once: the loser's sender is dropped and its thread ends unused.
    Ok(FORKER.get_or_init(|| jobs))
}
