//! Real-client pull round trips (being written).
