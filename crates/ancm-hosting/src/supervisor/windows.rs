//! Windows process control: a kill-on-close job object per child (so a gateway crash or a
//! shutdown kills the whole tree), Ctrl+Break, and a `PROCESS_DUP_HANDLE` handle for the
//! Windows-token forwarding (protocol §2.1, §2.9, §8.5).
#![allow(unsafe_code)]

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};

use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_DUP_HANDLE};

/// A job object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`.
#[derive(Debug)]
pub(crate) struct Job(OwnedHandle);

impl Job {
    /// Creates the job and puts `process` (a process handle) into it.
    pub(crate) fn create_for(process: RawHandle) -> std::io::Result<Self> {
        // SAFETY: null attributes and name are allowed; the returned handle is owned by us.
        let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
        let job = Job(unsafe { OwnedHandle::from_raw_handle(raw) });
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = u32::try_from(std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>())
            .unwrap_or(u32::MAX);
        // SAFETY: the pointer and size describe `info`, which outlives the call.
        let ok = unsafe {
            SetInformationJobObject(
                job.0.as_raw_handle(),
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                size,
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both handles are valid for the duration of the call.
        let ok = unsafe { AssignProcessToJobObject(job.0.as_raw_handle(), process) };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(job)
    }

    /// Terminates every process in the job.
    pub(crate) fn terminate(&self) {
        // SAFETY: the handle is valid while `self` lives.
        unsafe {
            TerminateJobObject(self.0.as_raw_handle(), 1);
        }
    }
}

/// Sends Ctrl+Break to the process group of `pid` (the child was created with
/// `CREATE_NEW_PROCESS_GROUP`, so Ctrl+C would be ignored). False if it could not be sent.
pub(crate) fn ctrl_break(pid: u32) -> bool {
    // SAFETY: plain FFI call with integer arguments.
    unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) != 0 }
}

/// A handle to `pid` with `PROCESS_DUP_HANDLE` access.
pub(crate) fn open_for_dup(pid: u32) -> Option<OwnedHandle> {
    // SAFETY: plain FFI call; a non-null result is a handle we own.
    let raw = unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, pid) };
    if raw.is_null() {
        None
    } else {
        // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
        Some(unsafe { OwnedHandle::from_raw_handle(raw) })
    }
}

/// The private bytes of process `pid` (what IIS's `privateMemory` limit measures).
pub(crate) fn private_bytes(pid: u32) -> Option<u64> {
    use windows_sys::Win32::System::ProcessStatus::{
        K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS, PROCESS_MEMORY_COUNTERS_EX,
    };
    use windows_sys::Win32::System::Threading::PROCESS_QUERY_LIMITED_INFORMATION;
    // SAFETY: plain FFI call; a non-null result is a handle we own.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(raw) };
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut counters: PROCESS_MEMORY_COUNTERS_EX = unsafe { std::mem::zeroed() };
    let size = u32::try_from(std::mem::size_of::<PROCESS_MEMORY_COUNTERS_EX>()).unwrap_or(u32::MAX);
    counters.cb = size;
    // SAFETY: the pointer and size describe `counters`, which outlives the call; the EX
    // structure starts with the plain one.
    let ok = unsafe {
        K32GetProcessMemoryInfo(
            process.as_raw_handle(),
            (&raw mut counters).cast::<PROCESS_MEMORY_COUNTERS>(),
            size,
        )
    };
    (ok != 0).then(|| u64::try_from(counters.PrivateUsage).unwrap_or(u64::MAX))
}
