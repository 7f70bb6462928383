//! What a test asks Windows directly: whether a process runs, the account a token names (to
//! compare with what the code under test found), and whether Wine runs the test.
//!
//! ```
//! use test_support::windows::{process_token, token_account};
//!
//! assert!(test_support::process::is_running(std::process::id()));
//! let me = token_account(&process_token());
//! assert!(!me.is_empty());
//! ```
#![allow(unsafe_code)]

use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _, OwnedHandle};

use windows_sys::Win32::Foundation::{
    ERROR_INSUFFICIENT_BUFFER, GetLastError, HANDLE, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountSidW, SID_NAME_USE, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE, WaitForSingleObject,
};

/// Whether process `pid` exists and has not exited.
pub(crate) fn is_running(pid: u32) -> bool {
    // SAFETY: plain FFI call; a non-null result is a handle we own.
    let raw = unsafe {
        OpenProcess(
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
            0,
            pid,
        )
    };
    if raw.is_null() {
        return false;
    }
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(raw) };
    // A process object outlives its process while handles to it are open: it is signalled
    // once the process has exited.
    // SAFETY: the handle is valid for the duration of the call.
    unsafe { WaitForSingleObject(process.as_raw_handle() as HANDLE, 0) == WAIT_TIMEOUT }
}

/// This process's own access token, with `TOKEN_QUERY` access: what an authentication layer
/// would hold for a user, here the test's.
///
/// # Panics
///
/// If Windows does not give it.
pub fn process_token() -> OwnedHandle {
    let mut raw: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process is always valid; `raw` is a valid out pointer.
    let ok = unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut raw) };
    assert!(
        ok != 0,
        "OpenProcessToken: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    unsafe { OwnedHandle::from_raw_handle(raw) }
}

/// The account `token` belongs to, as `DOMAIN\name` (`GetTokenInformation(TokenUser)`, then
/// `LookupAccountSidW`).
///
/// # Panics
///
/// If Windows does not tell.
pub fn token_account(token: &OwnedHandle) -> String {
    let token = token.as_raw_handle() as HANDLE;
    let mut len: u32 = 0;
    // SAFETY: a size query with a null buffer of length 0; `len` is a valid out pointer.
    let ok = unsafe { GetTokenInformation(token, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    // SAFETY: reads the calling thread's last-error value.
    assert!(
        ok != 0 || unsafe { GetLastError() } == ERROR_INSUFFICIENT_BUFFER,
        "GetTokenInformation: {}",
        std::io::Error::last_os_error()
    );
    // TOKEN_USER holds a pointer: a u64 buffer is aligned for it.
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    let size = u32::try_from(buf.len() * 8).expect("a small TOKEN_USER");
    // SAFETY: `buf` is writable for `size` bytes and aligned for TOKEN_USER.
    let ok =
        unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), size, &mut len) };
    assert!(
        ok != 0,
        "GetTokenInformation: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the buffer holds a TOKEN_USER whose SID points into the buffer, which outlives
    // every use below.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut name = [0u16; 512];
    let mut domain = [0u16; 512];
    let (mut name_len, mut domain_len) = (512u32, 512u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: both buffers are writable for the lengths passed; `sid` is valid (above).
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    assert!(
        ok != 0,
        "LookupAccountSidW: {}",
        std::io::Error::last_os_error()
    );
    let name = String::from_utf16_lossy(&name[..name_len as usize]);
    let domain = String::from_utf16_lossy(&domain[..domain_len as usize]);
    if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    }
}

/// Whether the test runs under Wine (its ntdll exports `wine_get_version`), where some of
/// Windows is missing: `GenerateConsoleCtrlEvent` cannot deliver Ctrl+Break, for one.
pub fn under_wine() -> bool {
    let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
    // SAFETY: a NUL-terminated UTF-16 name; ntdll is loaded in every process and stays.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    // SAFETY: a valid module handle (checked) and a NUL-terminated ASCII name.
    !module.is_null()
        && unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}
