//! `http_server_core::files::Files` over wasi:filesystem: the directories the host preopened
//! for this instance (read-only), found by name. The host's sandbox keeps every path inside
//! its directory (symbolic links included).

use alloc::string::String;
use alloc::vec::Vec;

use http_server_core::files::{FileMeta, Files};
use wasip2::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags,
};

#[derive(Default)]
pub struct Disk {
    /// The preopened directories, fetched at the first use.
    dirs: Option<Vec<(Descriptor, String)>>,
}

// One instance, one thread: the descriptors never leave it.
unsafe impl Send for Disk {}

fn status(e: ErrorCode) -> u16 {
    match e {
        ErrorCode::NoEntry | ErrorCode::NotDirectory | ErrorCode::IsDirectory => 404,
        ErrorCode::Access | ErrorCode::NotPermitted => 403,
        _ => 500,
    }
}

impl Disk {
    fn dir(&mut self, name: &str) -> Result<&Descriptor, u16> {
        let dirs = self
            .dirs
            .get_or_insert_with(wasip2::filesystem::preopens::get_directories);
        dirs.iter()
            .find(|(_, n)| n == name)
            .map(|(d, _)| d)
            .ok_or(404)
    }
}

impl Files for Disk {
    fn stat(&mut self, dir: &str, rel: &str) -> Result<FileMeta, u16> {
        let s = self
            .dir(dir)?
            .stat_at(PathFlags::SYMLINK_FOLLOW, rel)
            .map_err(status)?;
        Ok(FileMeta {
            size: s.size,
            modified: s.data_modification_timestamp.map_or(0, |t| t.seconds),
            is_dir: s.type_ == DescriptorType::Directory,
        })
    }

    fn read(&mut self, dir: &str, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>, u16> {
        let f = self
            .dir(dir)?
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                rel,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(status)?;
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let want = (len - out.len() as u64).min(1 << 20);
            let (bytes, end) = f.read(want, offset + out.len() as u64).map_err(status)?;
            out.extend_from_slice(&bytes);
            if end || bytes.is_empty() {
                break;
            }
        }
        Ok(out)
    }
}
