//! The `signet` binary: the command line in `cli/`, on top of the library.

mod cli;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc. Zones of millions of records are
/// built on one thread and dropped on another (rayon's pieces, the
/// service's runs); glibc keeps what one thread's arena freed away from
/// the others, and the process held it: in the transfer benchmark
/// (docs/benchmarks.md) the peak RSS of `signet serve` on the 1M zone was
/// 1067 MiB with glibc's default, 777 MiB with glibc held to one arena.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
