//! Rebuilding read models from position zero while the service keeps answering.
//!
//! A rebuild creates a scratch schema with empty copies of the projector's tables and runs the
//! projector over the whole log with `search_path` set to that schema first, so the projector's
//! own SQL (unqualified names) writes the copies. Then:
//! - `swap` (replay): in one transaction it locks the live projector's checkpoint row (the live
//!   runner skips a locked checkpoint, so it pauses), locks the live tables, applies what was
//!   appended meanwhile, moves the live tables out and the rebuilt ones in, carries over the
//!   operational columns, and sets the checkpoint to where the rebuild stopped. Readers wait for
//!   that commit (milliseconds), never see a half-built table, and nothing is lost or doubled.
//! - `verify`: rebuilds up to exactly the live checkpoint (again under its lock) and compares
//!   the tables row by row; nothing is swapped.

use std::sync::Arc;

use sqlx::{Acquire, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::{self, LogPosition, StoredEvent};

/// Sort memory for building an index over a rebuilt table: four times the default 64 MB, so a
/// million rows' sort can stay in memory.
const INDEX_BUILD_MEMORY: &str = "set local maintenance_work_mem = '256MB'";

/// Events per rebuild transaction. Larger batches go faster (1M events: 13.5 s at 2,000, 12.6 s
/// at 4,000) but three are in memory at once (read ahead, being read, being applied): peak RSS
/// 35, 46 and 54 MB at 2,000, 3,000 and 4,000, against a 64 MB budget.
pub const BATCH: i64 = 3000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no read model named {name:?}; the ones that can be rebuilt: {known}")]
    Unknown { name: String, known: String },
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The projectors whose tables are read models (derived from the log alone).
pub fn rebuildable() -> Vec<Arc<dyn Projector>> {
    crate::read_models()
}

/// One named read model, or all of them.
pub fn select(name: Option<&str>) -> Result<Vec<Arc<dyn Projector>>, RebuildError> {
    let all = rebuildable();
    let Some(name) = name else {
        return Ok(all);
    };
    let known = all.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    let chosen: Vec<_> = all.into_iter().filter(|p| p.name() == name).collect();
    if chosen.is_empty() {
        return Err(RebuildError::Unknown {
            name: name.to_owned(),
            known,
        });
    }
    Ok(chosen)
}

/// How far a rebuild has come.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub projector: &'static str,
    pub events: u64,
    pub position: i64,
}

/// Rows that differ between a live table and its rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    pub table: &'static str,
    /// Rows in the live table that the rebuild does not have (changed or extra).
    pub only_live: i64,
    /// Rows of the rebuild missing from the live table.
    pub only_rebuilt: i64,
}

pub struct Rebuild {
    pool: PgPool,
    projector: Arc<dyn Projector>,
    schema: String,
    position: LogPosition,
    events: u64,
    /// Definitions of the live tables' secondary indexes, built on the copies only once they
    /// are filled (a bulk load is several times faster without them).
    deferred_indexes: Vec<String>,
    /// Unique constraints taken off the bulk-loaded copies, put back before `finish_rebuild`.
    unique_to_restore: Vec<String>,
}

impl Rebuild {
    /// Creates the scratch schema with empty copies of the projector's tables.
    pub async fn start(pool: &PgPool, projector: Arc<dyn Projector>) -> Result<Self, RebuildError> {
        // Identifiers come from our own code (projector and table names), never from input.
        let schema = format!("rebuild_{}_{:08x}", projector.name(), rand::random::<u32>());
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("create schema {schema}"))
            .execute(&mut *tx)
            .await?;
        for table in projector.tables().iter().chain(projector.shadowed_tables()) {
            sqlx::query(&format!(
                "create table {schema}.{table} (like public.{table} including all)"
            ))
            .execute(&mut *tx)
            .await?;
        }
        // Secondary (non-unique) indexes: the copies lose theirs until the swap. Unique ones
        // stay, since the projectors' ON CONFLICT clauses need them.
        let secondary = "select i.schemaname::text, i.indexname::text, i.indexdef
               from pg_indexes i
               join pg_namespace n on n.nspname = i.schemaname
               join pg_class c on c.relname = i.indexname and c.relnamespace = n.oid
               join pg_index x on x.indexrelid = c.oid
              where i.schemaname = $1 and i.tablename = any($2) and not x.indisunique";
        let tables = projector.tables();
        let live: Vec<(String, String, String)> = sqlx::query_as(secondary)
            .bind("public")
            .bind(tables)
            .fetch_all(&mut *tx)
            .await?;
        let copies: Vec<(String, String, String)> = sqlx::query_as(secondary)
            .bind(&schema)
            .bind(tables)
            .fetch_all(&mut *tx)
            .await?;
        for (_, index, _) in copies {
            sqlx::query(&format!("drop index {schema}.\"{index}\""))
                .execute(&mut *tx)
                .await?;
        }
        let deferred_indexes = live
            .into_iter()
            .map(|(_, _, definition)| {
                definition.replacen(" ON public.", &format!(" ON {schema}."), 1)
            })
            .collect();
        let mut unique_to_restore = Vec::new();
        for table in projector.bulk_loaded_tables() {
            let constraints: Vec<(String, String)> = sqlx::query_as(
                "select conname::text, pg_get_constraintdef(oid) from pg_constraint
                  where conrelid = ($1 || '.' || $2)::regclass and contype in ('p', 'u')",
            )
            .bind(&schema)
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
            for (name, definition) in constraints {
                sqlx::query(&format!(
                    "alter table {schema}.{table} drop constraint \"{name}\""
                ))
                .execute(&mut *tx)
                .await?;
                unique_to_restore.push(format!(
                    "alter table {schema}.{table} add constraint \"{name}\" {definition}"
                ));
            }
        }
        tx.commit().await?;
        Ok(Self {
            pool: pool.clone(),
            projector,
            schema,
            position: LogPosition::START,
            events: 0,
            deferred_indexes,
            unique_to_restore,
        })
    }

    pub fn progress(&self) -> Progress {
        Progress {
            projector: self.projector.name(),
            events: self.events,
            position: self.position.position,
        }
    }

    async fn point_at_scratch(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("set local search_path to {}, public", self.schema))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Applies the next batch (up to `bound`) on `conn`; returns how many events it held.
    async fn next_batch(
        &mut self,
        conn: &mut PgConnection,
        bound: Option<LogPosition>,
    ) -> Result<usize, RebuildError> {
        let events =
            event_log::read_after_for(conn, self.position, BATCH, self.projector.interests())
                .await?;
        let events: Vec<_> = match bound {
            Some(bound) => events
                .into_iter()
                .take_while(|e| e.log_position() <= bound)
                .collect(),
            None => events,
        };
        let Some(last) = events.last().map(|e| e.log_position()) else {
            return Ok(0);
        };
        self.projector.apply_batch(conn, &events).await?;
        self.position = last;
        self.events += events.len() as u64;
        Ok(events.len())
    }

    /// Applies the log up to `bound` (or all that is readable), a transaction per batch, in
    /// the projector's rebuild mode; called once per rebuild. The next batch is read (on another connection) while the current one is written, so the
    /// database reads and writes at once.
    pub async fn run(
        &mut self,
        bound: Option<LogPosition>,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), RebuildError> {
        let (batches, mut incoming) = tokio::sync::mpsc::channel(1);
        let reader = tokio::spawn(read_ahead(
            self.pool.clone(),
            self.position,
            bound,
            self.projector.interests(),
            batches,
        ));
        while let Some(batch) = incoming.recv().await {
            self.apply_bulk(&batch?).await?;
            on_progress(self.progress());
        }
        reader.await.ok();
        self.finish_bulk().await
    }

    /// One bulk batch, in its own transaction, in the projector's rebuild mode.
    async fn apply_bulk(&mut self, events: &[StoredEvent]) -> Result<(), RebuildError> {
        let Some(last) = events.last().map(|e| e.log_position()) else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await?;
        // Scratch tables are thrown away if anything fails; no need to wait for the flush.
        sqlx::query("set local synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        self.point_at_scratch(&mut tx).await?;
        self.projector.rebuild_batch(&mut tx, events).await?;
        tx.commit().await?;
        self.position = last;
        self.events += events.len() as u64;
        Ok(())
    }

    /// What the bulk phase left out: the unique constraints (repeats dropped first if one does
    /// not hold), then what the projector deferred.
    async fn finish_bulk(&self) -> Result<(), RebuildError> {
        let mut tx = self.pool.begin().await?;
        self.point_at_scratch(&mut tx).await?;
        sqlx::query(INDEX_BUILD_MEMORY).execute(&mut *tx).await?;
        for statement in &self.unique_to_restore {
            let mut attempt = tx.begin().await?;
            match sqlx::query(statement).execute(&mut *attempt).await {
                Ok(_) => attempt.commit().await?,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    attempt.rollback().await?;
                    self.projector.drop_repeats(&mut tx).await?;
                    sqlx::query(statement).execute(&mut *tx).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.projector.finish_rebuild(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Locks the live checkpoint (pausing the live runner) and returns where it stands.
    async fn pause_live(&self, conn: &mut PgConnection) -> Result<LogPosition, RebuildError> {
        let name = self.projector.name();
        store::checkpoint::register(&self.pool, name).await?;
        Ok(store::checkpoint::lock(conn, name).await?)
    }

    /// Catches up and swaps the rebuilt tables in for the live ones, atomically.
    pub async fn swap(mut self) -> Result<Progress, RebuildError> {
        let name = self.projector.name();
        // Built (and made crash-safe) before the swap's locks are taken, so readers never
        // wait for them; each on a connection of its own, side by side.
        let builds = std::mem::take(&mut self.deferred_indexes)
            .into_iter()
            .map(|definition| {
                let pool = self.pool.clone();
                async move {
                    let mut tx = pool.begin().await?;
                    sqlx::query(INDEX_BUILD_MEMORY).execute(&mut *tx).await?;
                    sqlx::query(&definition).execute(&mut *tx).await?;
                    tx.commit().await
                }
            });
        futures::future::try_join_all(builds).await?;

        let retired = format!("{}_retired", self.schema);
        let mut tx = self.pool.begin().await?;
        self.pause_live(&mut tx).await?;
        sqlx::query(&format!("create schema {retired}"))
            .execute(&mut *tx)
            .await?;
        let tables = self.projector.tables();
        sqlx::query(&format!(
            "lock table {} in access exclusive mode",
            tables
                .iter()
                .map(|t| format!("public.{t}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .execute(&mut *tx)
        .await?;
        self.point_at_scratch(&mut tx).await?;
        while self.next_batch(&mut tx, None).await? > 0 {}
        for table in tables {
            sqlx::query(&format!("alter table public.{table} set schema {retired}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "alter table {}.{table} set schema public",
                self.schema
            ))
            .execute(&mut *tx)
            .await?;
        }
        rename_indexes_like(&mut tx, &retired, tables).await?;
        for carried in self.projector.carried_columns() {
            sqlx::query(&format!(
                "update public.{t} n set {c} = o.{c} from {retired}.{t} o where n.{k} = o.{k}",
                t = carried.table,
                c = carried.column,
                k = carried.key
            ))
            .execute(&mut *tx)
            .await?;
        }
        store::checkpoint::set(&mut tx, name, self.position, self.events as i64).await?;
        tx.commit().await?;
        let progress = self.progress();
        drop_schema(&self.pool, &retired).await?;
        drop_schema(&self.pool, &self.schema).await?;
        Ok(progress)
    }

    /// Rebuilds up to exactly where the live model stands and compares them row by row.
    pub async fn verify(
        mut self,
        on_progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<TableDiff>, RebuildError> {
        let live_then = self.live_position().await?;
        self.run(Some(live_then), on_progress).await?;
        self.compare_with_live().await
    }

    /// Where the live model stands now.
    pub async fn live_position(&self) -> Result<LogPosition, RebuildError> {
        Ok(
            store::checkpoint::current(&self.pool, self.projector.name())
                .await?
                .unwrap_or(LogPosition::START),
        )
    }

    /// Under the live checkpoint's lock, catches up to exactly where the live model stands
    /// (the rebuild must not be past it) and compares the tables row by row.
    pub async fn compare_with_live(mut self) -> Result<Vec<TableDiff>, RebuildError> {
        let mut tx = self.pool.begin().await?;
        let live = self.pause_live(&mut tx).await?;
        self.point_at_scratch(&mut tx).await?;
        while self.next_batch(&mut tx, Some(live)).await? > 0 {}
        let mut diffs = Vec::new();
        for table in self.projector.tables() {
            let ignored: Vec<&str> = self
                .projector
                .carried_columns()
                .iter()
                .filter(|c| c.table == *table)
                .map(|c| c.column)
                .collect();
            let columns: Vec<(String, String)> = sqlx::query_as(
                "select column_name::text, data_type::text from information_schema.columns
                  where table_schema = 'public' and table_name = $1 order by ordinal_position",
            )
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
            // json has no equality operator; compare its text.
            let list = columns
                .iter()
                .filter(|(c, _)| !ignored.contains(&c.as_str()))
                .map(|(c, t)| {
                    if t == "json" {
                        format!("{c}::text")
                    } else {
                        c.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let count = |a: &str, b: &str| {
                format!(
                    "select count(*) from (select {list} from {a}.{table} except all select {list} from {b}.{table}) d"
                )
            };
            let only_live: i64 = sqlx::query_scalar(&count("public", &self.schema))
                .fetch_one(&mut *tx)
                .await?;
            let only_rebuilt: i64 = sqlx::query_scalar(&count(&self.schema, "public"))
                .fetch_one(&mut *tx)
                .await?;
            if only_live != 0 || only_rebuilt != 0 {
                diffs.push(TableDiff {
                    table,
                    only_live,
                    only_rebuilt,
                });
            }
        }
        // Nothing of the comparison is kept (the scratch schema goes below).
        tx.rollback().await?;
        drop_schema(&self.pool, &self.schema).await?;
        Ok(diffs)
    }

    /// Gives up: drops the scratch schema.
    pub async fn abandon(self) -> Result<(), RebuildError> {
        drop_schema(&self.pool, &self.schema).await
    }
}

/// Reads batches after `after` (up to `bound`) into `batches` until the readable log ends.
async fn read_ahead(
    pool: PgPool,
    mut after: LogPosition,
    bound: Option<LogPosition>,
    interests: Option<&'static [&'static str]>,
    batches: tokio::sync::mpsc::Sender<Result<Vec<StoredEvent>, sqlx::Error>>,
) {
    loop {
        let read = async {
            let mut conn = pool.acquire().await?;
            event_log::read_after_for(&mut conn, after, BATCH, interests).await
        };
        let events = match read.await {
            Ok(events) => events,
            Err(error) => {
                let _ = batches.send(Err(error)).await;
                return;
            }
        };
        let read = events.len();
        let events: Vec<StoredEvent> = match bound {
            Some(bound) => events
                .into_iter()
                .take_while(|e| e.log_position() <= bound)
                .collect(),
            None => events,
        };
        let Some(last) = events.last().map(|e| e.log_position()) else {
            return;
        };
        let done = events.len() < read;
        after = last;
        if batches.send(Ok(events)).await.is_err() || done {
            return;
        }
    }
}

/// Rebuilds several read models from one pass over the log: each batch is read (and its
/// payloads parsed) once and applied to every rebuild at once, each in its own transaction.
/// Stops at `bound` or where the readable log ends; then each finishes its deferred work.
pub async fn run_together(
    rebuilds: &mut [Rebuild],
    bound: Option<LogPosition>,
    on_progress: &mut (dyn FnMut(&[Progress]) + Send),
) -> Result<(), RebuildError> {
    let Some(first) = rebuilds.first() else {
        return Ok(());
    };
    let start = rebuilds
        .iter()
        .map(|r| r.position)
        .min()
        .unwrap_or(LogPosition::START);
    let (batches, mut incoming) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(read_ahead(first.pool.clone(), start, bound, None, batches));
    while let Some(batch) = incoming.recv().await {
        let events = batch?;
        let applied = rebuilds.iter_mut().map(|rebuild| {
            let events = &events;
            async move {
                // A rebuild that started further along skips what it has.
                let from = events.partition_point(|e| e.log_position() <= rebuild.position);
                rebuild.apply_bulk(&events[from..]).await
            }
        });
        for outcome in futures::future::join_all(applied).await {
            outcome?;
        }
        let progress: Vec<Progress> = rebuilds.iter().map(Rebuild::progress).collect();
        on_progress(&progress);
    }
    reader.await.ok();
    futures::future::try_join_all(rebuilds.iter().map(Rebuild::finish_bulk)).await?;
    Ok(())
}

async fn drop_schema(pool: &PgPool, schema: &str) -> Result<(), RebuildError> {
    sqlx::query(&format!("drop schema if exists {schema} cascade"))
        .execute(pool)
        .await?;
    Ok(())
}

/// `create table ... (like ... including all)` names indexes its own way; give the swapped-in
/// tables' indexes the names the migrations gave the originals, so later migrations find them.
async fn rename_indexes_like(
    conn: &mut PgConnection,
    retired: &str,
    tables: &[&str],
) -> Result<(), sqlx::Error> {
    let renames: Vec<(String, String)> = sqlx::query_as(
        "select n.indexname::text, o.indexname::text
           from pg_indexes n join pg_indexes o
             on o.tablename = n.tablename and o.schemaname = $1 and n.schemaname = 'public'
            and regexp_replace(o.indexdef, '^.* USING ', '') = regexp_replace(n.indexdef, '^.* USING ', '')
          where n.tablename = any($2) and n.indexname <> o.indexname",
    )
    .bind(retired)
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    for (new, old) in renames {
        sqlx::query(&format!("alter index public.\"{new}\" rename to \"{old}\""))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
