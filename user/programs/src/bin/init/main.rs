#![no_std]
#![no_main]
rt::entry!(main);
fn main(args: &str) -> i32 {
    rt::println!("init: hello, mode {args}, pid {}", rt::sys::process_id());
    let exit = rt::process::run("hello", "world");
    rt::println!("init: hello ended: {exit:?}");
    7
}
