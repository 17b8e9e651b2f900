//! What a test reads straight from a server's data directory or database,
//! past the server: rows, whole dumps, files at rest.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One text column of every row `sql` returns, on PostgreSQL.
pub fn postgres_query(url: &str, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query_scalar(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// Every line `sql` prints through the `sqlite3` CLI (one per row).
pub fn sqlite_query(db: &Path, sql: &str) -> Vec<String> {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI (apt-get install sqlite3)");
    crate::succeeded(&out).lines().map(str::to_string).collect()
}

/// The SQLite database file of a server's data directory.
pub fn sqlite_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tagtrust.db")
}

/// The whole database as bytes to search: on SQLite the raw file, its WAL
/// and journal, and the `sqlite3` CLI's `.dump` (so nothing hides in a page
/// encoding); on PostgreSQL every row of every table as JSON text.
pub fn dump_database(data_dir: &Path, database_url: Option<&str>) -> Vec<u8> {
    match database_url {
        None => {
            let db = sqlite_file(data_dir);
            let mut out = Vec::new();
            for suffix in ["", "-wal", "-shm", "-journal"] {
                if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.display())) {
                    out.extend_from_slice(&bytes);
                }
            }
            out.extend(sqlite_query(&db, ".dump").join("\n").into_bytes());
            out
        }
        Some(url) => {
            let tables = postgres_query(
                url,
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            );
            // The tables whose secrets the tests look for must be there.
            for table in ["tokens", "online_keys"] {
                assert!(tables.iter().any(|t| t == table), "{tables:?}");
            }
            let mut out = String::new();
            for table in tables {
                let sql = format!("SELECT row_to_json(t)::text FROM \"{table}\" t");
                for row in postgres_query(url, &sql) {
                    out.push_str(&format!("{table}: {row}\n"));
                }
            }
            out.into_bytes()
        }
    }
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read a directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
