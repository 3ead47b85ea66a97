//! Appending single-event streams (usage records, threshold alerts) in bulk. Such a stream
//! holds exactly one event at sequence 1, so the event store's primary key turns a second
//! append of the same stream into a no-op: that is how a request id is recorded once, and an
//! alert fires once, whoever tries.
//!
//! The rows have postgres-es's shape (externally tagged payload, string-map metadata), so
//! `read_stream` and cqrs-es see them like any other event.

use cqrs_es::DomainEvent;
use serde::Serialize;
use sqlx::PgConnection;

/// One event opening its own stream.
#[derive(Debug, Clone)]
pub struct StreamStart {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub event_type: String,
    pub event_version: String,
    /// JSON text; kept as text so numbers and key order pass through untouched.
    pub payload: String,
    pub metadata: String,
}

impl StreamStart {
    pub fn new<E: DomainEvent + Serialize>(
        aggregate_type: &'static str,
        aggregate_id: String,
        event: &E,
        metadata: &std::collections::HashMap<String, String>,
    ) -> Result<Self, serde_json::Error> {
        Self::with_metadata_text(
            aggregate_type,
            aggregate_id,
            event,
            serde_json::to_string(metadata)?,
        )
    }

    /// Like `new`, with the metadata already as JSON text (a batch shares one).
    pub fn with_metadata_text<E: DomainEvent + Serialize>(
        aggregate_type: &'static str,
        aggregate_id: String,
        event: &E,
        metadata: String,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            aggregate_type,
            aggregate_id,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_string(event)?,
            metadata,
        })
    }
}

/// What a bulk append did: the ids of the streams it opened (the others already existed) and
/// the highest global position it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    pub opened: Vec<String>,
    pub last_position: Option<i64>,
}

/// Appends each event as sequence 1 of its stream, skipping streams that already exist.
pub async fn open_streams(
    conn: &mut PgConnection,
    events: &[StreamStart],
) -> Result<Appended, sqlx::Error> {
    if events.is_empty() {
        return Ok(Appended::default());
    }
    let mut types = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut event_types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for event in events {
        types.push(event.aggregate_type);
        ids.push(event.aggregate_id.as_str());
        event_types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        payloads.push(event.payload.as_str());
        metadata.push(event.metadata.as_str());
    }
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select t, i, 1, e, v, p::json, m::json
           from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) as x(t, i, e, v, p, m)
         on conflict (aggregate_type, aggregate_id, sequence) do nothing
         returning aggregate_id, global_position",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .fetch_all(&mut *conn)
    .await?;
    let last_position = rows.iter().map(|(_, p)| *p).max();
    Ok(Appended {
        opened: rows.into_iter().map(|(id, _)| id).collect(),
        last_position,
    })
}
