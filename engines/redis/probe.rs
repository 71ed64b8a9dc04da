//! The probe for `redis-server`, shared by the build scripts of the crates whose tests run one
//! (`std` only): on a machine without it those tests show as ignored, with what to install,
//! instead of passing without running. `ROOMCAST_REQUIRE_REDIS=1` (CI) runs them whatever the
//! probe found, so that a missing server fails them. The server is `$ROOMCAST_REDIS_SERVER`,
//! else `redis-server` on the `PATH`; its path reaches the tests as
//! `ROOMCAST_TEST_REDIS_SERVER`, and the cfg `roomcast_redis` says to run them.

use std::path::PathBuf;

/// Prints the build script's lines.
pub fn emit_build_cfg() {
    println!("cargo::rustc-check-cfg=cfg(roomcast_redis)");
    println!("cargo::rerun-if-env-changed=ROOMCAST_REDIS_SERVER");
    println!("cargo::rerun-if-env-changed=ROOMCAST_REQUIRE_REDIS");
    println!("cargo::rerun-if-env-changed=PATH");
    let server = std::env::var_os("ROOMCAST_REDIS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join("redis-server"))
                .find(|candidate| candidate.is_file())
        });
    let required = std::env::var("ROOMCAST_REQUIRE_REDIS").as_deref() == Ok("1");
    let found = server.as_ref().is_some_and(|server| server.is_file());
    let server = server.unwrap_or_else(|| PathBuf::from("redis-server"));
    println!(
        "cargo::rustc-env=ROOMCAST_TEST_REDIS_SERVER={}",
        server.display()
    );
    if required || found {
        println!("cargo::rustc-cfg=roomcast_redis");
    }
}
