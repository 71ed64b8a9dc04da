//! The probe for the tests that run Python scripts (this folder's), `std` only, shared by the
//! build scripts of the `roomcast-tests` crate and of the `roomcast` server: cfg
//! `roomcast_python` when the interpreter is there, or with `ROOMCAST_REQUIRE_PYTHON=1` (CI),
//! which runs the tests whatever the probe found, so a missing interpreter fails there. The
//! interpreter is `$ROOMCAST_PYTHON`, else the venv `tests/python/.venv` that `.ci/run` makes
//! from `requirements.txt`; its path reaches the tests as `ROOMCAST_TEST_PYTHON`.

use std::path::{Path, PathBuf};

/// Prints the cargo directives; `tests_dir` is the `tests/` folder.
pub fn emit_build_cfg(tests_dir: &Path) {
    println!("cargo::rustc-check-cfg=cfg(roomcast_python)");
    println!("cargo::rerun-if-env-changed=ROOMCAST_PYTHON");
    println!("cargo::rerun-if-env-changed=ROOMCAST_REQUIRE_PYTHON");
    let python = std::env::var_os("ROOMCAST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| tests_dir.join("python/.venv/bin/python"));
    println!("cargo::rustc-env=ROOMCAST_TEST_PYTHON={}", python.display());
    // Only a path that exists is watched (a missing one would rerun this on every build): the
    // interpreter, or the directory its venv would appear in.
    let watched = if python.exists() {
        Some(python.clone())
    } else {
        python
            .ancestors()
            .skip(1)
            .find(|dir| dir.is_dir())
            .map(Path::to_owned)
    };
    if let Some(path) = watched {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let required = std::env::var("ROOMCAST_REQUIRE_PYTHON").as_deref() == Ok("1");
    if required || python.exists() {
        println!("cargo::rustc-cfg=roomcast_python");
    }
}
