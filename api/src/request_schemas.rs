//! Schemas of request fields that say what the domain accepts (`domain::text`, `domain::money`,
//! the team limits), so a client (and the fuzzer) knows a value's shape before sending it: a
//! value the schema allows is not refused for its shape, and one it forbids is refused.
//! Used with `#[schema(schema_with = ...)]`; the `_or_null` forms are for optional fields.

use rust_decimal::prelude::ToPrimitive;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType,
    Type,
};
use utoipa::openapi::{RefOr, Schema};

/// `domain::text::identifier`: ASCII letters, digits, `-`, `_`, `.`.
const IDENTIFIER: &str = "^[A-Za-z0-9._-]+$";
/// `domain::text::display_name`: no control character (Unicode Cc) and, trimmed, not empty.
const DISPLAY_NAME: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// `domain::model_name::ModelName`: no whitespace, no control character.
const MODEL_NAME: &str = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$";

fn string_type(nullable: bool) -> SchemaType {
    if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    }
}

fn text(pattern: &str, max: usize, nullable: bool) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(string_type(nullable))
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max))
}

/// An identifier of at most `MAX` characters.
pub fn identifier<const MAX: usize>() -> RefOr<Schema> {
    text(IDENTIFIER, MAX, false).into()
}

pub fn identifier_or_null<const MAX: usize>() -> RefOr<Schema> {
    text(IDENTIFIER, MAX, true).into()
}

/// A display name of at most `MAX` characters.
pub fn display_name<const MAX: usize>() -> RefOr<Schema> {
    text(DISPLAY_NAME, MAX, false).into()
}

pub fn display_name_or_null<const MAX: usize>() -> RefOr<Schema> {
    text(DISPLAY_NAME, MAX, true).into()
}

/// A model group's models: at least one, each a LiteLLM model name.
pub fn model_names() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(text(
            MODEL_NAME,
            domain::model_name::ModelName::MAX_LEN,
            false,
        ))
        .min_items(Some(1))
        .max_items(Some(domain::model_group::MAX_MODELS))
        .into()
}

/// Names of model groups (may be none).
pub fn group_names() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(text(
            IDENTIFIER,
            domain::model_name::GroupName::MAX_LEN,
            false,
        ))
        .into()
}

/// An exact decimal between `min` and `max` (`min` itself excluded when `exclusive`), as a JSON
/// number or numeric text. What a number's digits allow (6 decimals for money, 4 for
/// percentages) has no JSON Schema form; it is the domain's 422 `validation_failed`.
fn decimal(min: f64, exclusive: bool, max: f64, nullable: bool, what: &str) -> RefOr<Schema> {
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .maximum(Some(max));
    let number = if exclusive {
        number.exclusive_minimum(Some(min))
    } else {
        number.minimum(Some(min))
    };
    number_or_text(number, nullable, what)
}

/// Any exact decimal, unbounded (answers and free amounts).
pub fn exact_decimal() -> RefOr<Schema> {
    number_or_text(
        ObjectBuilder::new().schema_type(Type::Number),
        false,
        "An exact decimal",
    )
}

/// A decimal as a JSON number or its text, the two forms every amount is accepted in.
fn number_or_text(number: ObjectBuilder, nullable: bool, what: &str) -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new()
        .item(number)
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(format!(
            "{what}, as a JSON number or a string: `84.50` or `\"84.50\"`"
        )));
    if nullable {
        one_of = one_of.item(ObjectBuilder::new().schema_type(Type::Null));
    }
    one_of.into()
}

fn max_amount() -> f64 {
    domain::Money::MAX_AMOUNT.to_f64().unwrap_or(1e9)
}

/// Credits to add: more than 0, at most 10⁹, up to 6 decimals.
pub fn positive_money() -> RefOr<Schema> {
    decimal(
        0.0,
        true,
        max_amount(),
        false,
        "An amount above 0, at most 1e9, up to 6 decimals",
    )
}

/// Opening credits: 0 to 10⁹, up to 6 decimals.
pub fn money_or_null() -> RefOr<Schema> {
    decimal(
        0.0,
        false,
        max_amount(),
        true,
        "An amount from 0 to 1e9, up to 6 decimals",
    )
}

/// A markup percentage: 0 to 1000, up to 4 decimals.
pub fn markup() -> RefOr<Schema> {
    decimal(
        0.0,
        false,
        markup_max(),
        false,
        "A percentage from 0 to 1000, up to 4 decimals",
    )
}

pub fn markup_or_null() -> RefOr<Schema> {
    decimal(
        0.0,
        false,
        markup_max(),
        true,
        "A percentage from 0 to 1000, up to 4 decimals",
    )
}

fn markup_max() -> f64 {
    domain::Percent::MAX_MARKUP.to_f64().unwrap_or(1000.0)
}

/// A period bound: a date (`2026-11-27`) or an RFC 3339 time (`2026-11-27T10:00:00Z`).
pub fn date_or_time() -> RefOr<Schema> {
    let of = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(of(KnownFormat::Date))
        .item(of(KnownFormat::DateTime))
        .into()
}
