//! How PostgreSQL's failures are told apart, once for every layer above: the caller's bad text,
//! a database that is briefly away, and everything else.

/// PostgreSQL refuses text it cannot store: a NUL character (`22021` in text, `22P05` in
/// jsonb). That is the client's input, not our failure.
pub fn is_unstorable_text(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "22021" || code == "22P05")
}

/// The database could not be reached or dropped the connection (a restart, a failover, the
/// pool running dry): a retry shortly will likely work, so this is a 503, not our bug.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: shutdown or not accepting connections yet;
            // 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
