//! Probes for what the demo page's browser test (`tests/demo_browser.rs`) needs, so that on a
//! machine without node, Chromium or `tests/browser/node_modules` it shows as ignored, with what
//! to install, instead of passing without running. The probe is the roomcast-tests crate's
//! (`tests/src/browser.rs`, `std` only), shared with its build script.

use std::path::Path;

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/src/browser.rs"]
mod browser;

// And for `redis-server`, for the tests of nodes sharing Redis (`tests/redis_nodes.rs`).
#[allow(unreachable_pub)]
#[path = "../../engines/redis/probe.rs"]
mod probe;

// And for the Python interpreter of the API's contract test (`tests/openapi.rs`).
#[allow(unreachable_pub)]
#[path = "../../tests/python/probe.rs"]
mod python;

fn main() {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests");
    browser::emit_build_cfg(&tests_dir);
    python::emit_build_cfg(&tests_dir);
    probe::emit_build_cfg();
    balancers();
}

/// And for `nginx` and `haproxy`, for the load balancer examples of docs/scaling.md
/// (`tests/load_balancers.rs`): cfg `roomcast_balancers` when both are found (on the `PATH`,
/// or in `/usr/sbin`), or when `ROOMCAST_REQUIRE_BALANCERS=1` (CI) says to run the tests anyway;
/// their paths reach the tests as `ROOMCAST_TEST_NGINX` and `ROOMCAST_TEST_HAPROXY`.
fn balancers() {
    println!("cargo::rustc-check-cfg=cfg(roomcast_balancers)");
    println!("cargo::rerun-if-env-changed=ROOMCAST_REQUIRE_BALANCERS");
    println!("cargo::rerun-if-env-changed=PATH");
    let find = |name: &str| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    let (nginx, haproxy) = (find("nginx"), find("haproxy"));
    let required = std::env::var("ROOMCAST_REQUIRE_BALANCERS").as_deref() == Ok("1");
    let found = nginx.is_some() && haproxy.is_some();
    for (var, path, name) in [
        ("ROOMCAST_TEST_NGINX", nginx, "nginx"),
        ("ROOMCAST_TEST_HAPROXY", haproxy, "haproxy"),
    ] {
        let path = path.unwrap_or_else(|| std::path::PathBuf::from(name));
        println!("cargo::rustc-env={var}={}", path.display());
    }
    if required || found {
        println!("cargo::rustc-cfg=roomcast_balancers");
    }
}
