//! Report answers still assembled as JSON maps (organization and ranked reports) take a bucket's
//! totals from the typed `UsageTotals`, so every report names its totals the same way.

use projections::reports::UsageBucket;
use serde_json::{Map, Value};

use crate::responses::UsageTotals;

/// A bucket's totals as JSON fields, to merge into a report line.
pub fn totals_json(bucket: &UsageBucket) -> Map<String, Value> {
    match serde_json::to_value(UsageTotals::from(bucket)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}
