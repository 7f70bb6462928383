//! Resolve a forwarded Windows token to its user, then close it.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_INSUFFICIENT_BUFFER, GetLastError, HANDLE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountSidW, SID_NAME_USE, TOKEN_USER, TokenUser,
};

/// Closes the handle when dropped, whatever happened before.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the front duplicated this handle into our process for this request and
        // nothing else uses it; closing it once is what ANCM's middleware does.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// `(DOMAIN\name, SID string)` of the token's user. The handle is closed in every case.
pub(crate) fn resolve_token_user_and_close(raw_handle: u32) -> io::Result<(String, String)> {
    let token = OwnedHandle(raw_handle as usize as HANDLE);

    // TOKEN_USER holds pointers, so the buffer is u64-aligned.
    let mut len: u32 = 0;
    // SAFETY: a size query with a null buffer of length 0; `len` is a valid out pointer.
    let ok = unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
    // SAFETY: reads the calling thread's last-error value.
    if ok == 0 && unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    let buf_len = u32::try_from(buf.len() * 8).map_err(|_| io::Error::other("token too large"))?;
    // SAFETY: `buf` is writable for `buf_len` bytes and suitably aligned for TOKEN_USER.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buf.as_mut_ptr().cast::<c_void>(),
            buf_len,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a TOKEN_USER whose SID
    // points into the same buffer, which outlives every use below.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };

    let mut name = vec![0u16; 256];
    let mut domain = vec![0u16; 256];
    loop {
        let mut name_len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        let mut domain_len = u32::try_from(domain.len()).unwrap_or(u32::MAX);
        let mut use_: SID_NAME_USE = 0;
        // SAFETY: both buffers are writable for the lengths passed; `sid` is valid (above).
        let ok = unsafe {
            LookupAccountSidW(
                std::ptr::null(),
                sid,
                name.as_mut_ptr(),
                &mut name_len,
                domain.as_mut_ptr(),
                &mut domain_len,
                &mut use_,
            )
        };
        if ok != 0 {
            name.truncate(name_len as usize);
            domain.truncate(domain_len as usize);
            break;
        }
        // SAFETY: reads the calling thread's last-error value.
        if unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
            return Err(io::Error::last_os_error());
        }
        // On this error the lengths are the sizes needed, including the terminator.
        name.resize(name_len as usize + 1, 0);
        domain.resize(domain_len as usize + 1, 0);
    }
    let account = if domain.is_empty() {
        String::from_utf16_lossy(&name)
    } else {
        format!(
            "{}\\{}",
            String::from_utf16_lossy(&domain),
            String::from_utf16_lossy(&name)
        )
    };

    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` is valid; on success `text` is a NUL-terminated string we free below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut end = 0;
    // SAFETY: `text` is NUL-terminated (ConvertSidToStringSidW contract).
    while unsafe { *text.add(end) } != 0 {
        end += 1;
    }
    // SAFETY: `text` points to `end` initialised u16s.
    let sid_text = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, end) });
    // SAFETY: `text` was allocated by ConvertSidToStringSidW with LocalAlloc.
    unsafe {
        LocalFree(text.cast::<c_void>());
    }
    drop(buf);
    Ok((account, sid_text))
}
