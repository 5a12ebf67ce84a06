// expect: associated function `from_raw` is private|private associated function
//! Only the abstraction that owns a kind of table builds it (with its own
//! trampolines): a forged `FileOpsTable` would pass any `file_operations`
//! off as `T`'s, and files with it as `T`'s files.
use kernel::{bindings, fs::anon_file::FileOpsTable, static_table::StaticTable};

struct Mine;

#[allow(dead_code)]
fn forge(raw: bindings::file_operations) -> FileOpsTable<Mine> {
    // SAFETY: None: this is the forgery the case shows cannot compile.
    unsafe { StaticTable::from_raw(raw) }
}
