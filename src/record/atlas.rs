//! MITRE ATLAS techniques that aiwarden's rules refer to, and how to find them in tags.

/// The ATLAS framework name as SIEMs expect it (`threat.framework` in ECS).
pub const FRAMEWORK: &str = "MITRE ATLAS";

/// Techniques used by the rule pack: id and name (atlas.mitre.org).
pub const TECHNIQUES: &[(&str, &str)] = &[
    ("AML.T0012", "Valid Accounts"),
    ("AML.T0025", "Exfiltration via Cyber Means"),
    ("AML.T0034", "Cost Harvesting"),
    ("AML.T0051", "LLM Prompt Injection"),
    ("AML.T0053", "LLM Plugin Compromise"),
    ("AML.T0054", "LLM Jailbreak"),
    ("AML.T0056", "Extract LLM System Prompt"),
    ("AML.T0057", "LLM Data Leakage"),
];

/// The technique ids named in a rule's tags (`AML.T0051` or `ATLAS:AML.T0051`), in tag order.
pub fn technique_ids(tags: &[String]) -> Vec<&str> {
    tags.iter()
        .filter_map(|tag| tag.find("AML.T").map(|start| &tag[start..]))
        // Bytes, not a str slice: a tag with a multi-byte character there must not panic.
        .filter(|id| {
            id.as_bytes()
                .get(5..9)
                .is_some_and(|digits| digits.iter().all(u8::is_ascii_digit))
        })
        .collect()
}

/// The name of a technique id, when it is one of ours.
pub fn technique_name(id: &str) -> Option<&'static str> {
    TECHNIQUES
        .iter()
        .find(|(known, _)| id.starts_with(known))
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_technique_ids_in_tags() {
        let tags = vec![
            "mcp".to_string(),
            "ATLAS:AML.T0057".to_string(),
            "AML.T0034".to_string(),
            "AML.Tx".to_string(),
        ];
        assert_eq!(technique_ids(&tags), vec!["AML.T0057", "AML.T0034"]);
        assert_eq!(technique_name("AML.T0057"), Some("LLM Data Leakage"));
        assert_eq!(technique_name("AML.T9999"), None);
        let odd = vec!["AML.Té12".to_string(), "AML.T00€".to_string()];
        assert!(technique_ids(&odd).is_empty());
    }
}
