//! The README's SLO manifests are valid, so the documentation cannot drift from the checks.

mod support;

use plimsoll::manifests::{self, Decoded, Source};

#[test]
fn every_slo_in_the_readme_is_valid() {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .filter(|block| block.contains("kind: ServiceLevelObjective"))
        .collect();
    assert!(!blocks.is_empty(), "the README shows at least one SLO");
    for block in blocks {
        let Source::Documents(docs) = manifests::parse("README.md", block) else {
            panic!("not YAML:\n{block}");
        };
        for doc in docs {
            let decoded = manifests::decode(&doc.value);
            assert!(matches!(decoded, Decoded::Valid(_)), "{decoded:?}\n{block}");
        }
    }
}
