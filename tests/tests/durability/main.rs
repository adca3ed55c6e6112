//! Durability: what a socket with a store keeps across a restart (in this process) and across a
//! SIGKILL (a client process killed at random moments), and how it handles a damaged, newer,
//! shared or backgrounded store.

mod kill;
mod restart;
mod store_file;
