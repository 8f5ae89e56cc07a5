//! The crate's floors only go down (DESIGN §6): each top-level module imports only from modules
//! on lower floors, so there is no import cycle; `channel` never reaches the reactor; and nothing
//! outside `src/reactor/sys/` names mio or io_uring. Read from the source tree, so a change that
//! breaks a floor fails here with the file and the import.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and its floor; a module may import from lower floors only.
const FLOORS: [(&str, u32); 15] = [
    ("ids", 0),
    ("config", 0),
    ("limits", 0),
    ("stats", 1),
    ("protocol", 1),
    ("tls", 1),
    ("channel", 2),
    ("push", 3),
    ("session", 4),
    ("reactor", 5),
    ("fuzzing", 5),
    ("control", 6),
    ("cluster", 6),
    ("server", 7),
    ("main", 8),
];

fn floor(module: &str) -> u32 {
    FLOORS.iter().find(|(m, _)| *m == module).map(|(_, f)| *f).unwrap_or_else(|| {
        panic!("module {module} has no floor: add it to FLOORS (and ARCHITECTURE.md)")
    })
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/push/frame.rs` → `push`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    let first = first.as_os_str().to_str().expect("utf-8");
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its comments (doc and line comments).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or_default()))
        .filter(|(_, code)| !code.trim().is_empty())
}

/// Every `crate::<module>` a line names.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String =
            after.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if !name.is_empty() {
            found.insert(name);
        }
        rest = after;
    }
    found
}

#[test]
fn imports_only_go_down_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let text = fs::read_to_string(file).expect("readable");
        for (line, code) in code_lines(&text) {
            for imported in crate_modules(code) {
                if imported != module && floor(&imported) >= floor(&module) {
                    wrong.push(format!("{}:{line}: {module} imports {imported}", file.display()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports that do not go down a floor:\n{}", wrong.join("\n"));
}

#[test]
fn only_the_backends_name_mio_or_io_uring() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let backends = src.join("reactor").join("sys");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut named = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&backends)) {
        let text = fs::read_to_string(file).expect("readable");
        for (line, code) in code_lines(&text) {
            if ["mio::", "io_uring::", "epoll_"].iter().any(|name| code.contains(name)) {
                named.push(format!("{}:{line}: {}", file.display(), code.trim()));
            }
        }
    }
    assert!(named.is_empty(), "backend names outside reactor/sys:\n{}", named.join("\n"));
}
