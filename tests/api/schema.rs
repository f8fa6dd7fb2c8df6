//! `schema.graphql` is exactly what `coinstaker export-schema` prints.

#[test]
fn schema_graphql_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    let current = coinstaker::graphql::export_sdl();
    if stored != current {
        let diff = similar::TextDiff::from_lines(&stored, &current)
            .unified_diff()
            .header(
                "schema.graphql (checked in)",
                "export-schema (current code)",
            )
            .to_string();
        panic!(
            "schema.graphql is stale. Regenerate it with\n\n    cargo run -- export-schema > schema.graphql\n\n{diff}"
        );
    }
}
