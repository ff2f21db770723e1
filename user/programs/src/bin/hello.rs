//! Says hello: the smallest program, for `run hello` and for measuring
//! process start and exit.

#![no_std]
#![no_main]

rt::entry!(main);

fn main(arguments: &str) -> i32 {
    if arguments != "quiet" {
        rt::println!("hello from process {} {arguments}", rt::sys::process_id());
    }
    0
}
