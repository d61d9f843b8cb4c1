//! Character vocabulary: chars ⇄ ids, the MASK id, and prompts with gaps.
//!
//! Id 0 is MASK; ids 1.. are the distinct characters of the training text in sorted order
//! (the same layout as the reference's second version, where `_` was the mask).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const MASK_ID: u32 = 0;
pub const DEFAULT_MASK_CHAR: char = '_';

/// Serialised as the string of its characters in id order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Vocab {
    /// Characters for ids 1..=len, sorted.
    table: Vec<char>,
}

impl From<String> for Vocab {
    fn from(chars: String) -> Self {
        Vocab::from_chars(&chars)
    }
}

impl From<Vocab> for String {
    fn from(v: Vocab) -> Self {
        v.table.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    #[error("character {ch:?} at position {pos} is not in the model's vocabulary")]
    UnknownChar { ch: char, pos: usize },
    #[error("the training text is empty")]
    Empty,
}

/// One position of a prompt: a known character or a gap to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptCell {
    Known(char),
    Gap,
}

impl Vocab {
    pub fn from_text(text: &str) -> Result<Self, VocabError> {
        let set: BTreeSet<char> = text.chars().collect();
        if set.is_empty() {
            return Err(VocabError::Empty);
        }
        Ok(Vocab { table: set.into_iter().collect() })
    }

    /// Builds a vocabulary from its characters (sorted and deduplicated here, so ids are stable).
    pub fn from_chars(chars: &str) -> Self {
        let set: BTreeSet<char> = chars.chars().collect();
        Vocab { table: set.into_iter().collect() }
    }

    /// Number of ids including MASK.
    pub fn size(&self) -> usize {
        self.table.len() + 1
    }

    pub fn id(&self, ch: char) -> Option<u32> {
        // Sorted table: binary search keeps encoding a 1 MB corpus fast.
        self.table.binary_search(&ch).ok().map(|i| i as u32 + 1)
    }

    pub fn char(&self, id: u32) -> Option<char> {
        if id == MASK_ID { None } else { self.table.get(id as usize - 1).copied() }
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, VocabError> {
        text.chars()
            .enumerate()
            .map(|(pos, ch)| self.id(ch).ok_or(VocabError::UnknownChar { ch, pos }))
            .collect()
    }

    /// Decodes ids; MASK (or an unknown id) becomes `mask_char`.
    pub fn decode(&self, ids: &[u32], mask_char: char) -> String {
        ids.iter().map(|&id| self.char(id).unwrap_or(mask_char)).collect()
    }

    /// Encodes a prompt where each `mask_char` is a gap (MASK id).
    pub fn encode_prompt(&self, prompt: &str, mask_char: char) -> Result<Vec<u32>, VocabError> {
        parse_prompt(prompt, mask_char)
            .into_iter()
            .enumerate()
            .map(|(pos, cell)| match cell {
                PromptCell::Gap => Ok(MASK_ID),
                PromptCell::Known(ch) => self.id(ch).ok_or(VocabError::UnknownChar { ch, pos }),
            })
            .collect()
    }
}

/// Splits a prompt into known characters and gaps; a run of `mask_char` is a gap of that length.
pub fn parse_prompt(prompt: &str, mask_char: char) -> Vec<PromptCell> {
    prompt.chars().map(|c| if c == mask_char { PromptCell::Gap } else { PromptCell::Known(c) }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sorted_chars_after_mask() {
        let v = Vocab::from_text("hello").unwrap();
        assert_eq!(v.size(), 5); // MASK + e h l o
        assert_eq!(v.id('e'), Some(1));
        assert_eq!(v.id('o'), Some(4));
        assert_eq!(v.char(MASK_ID), None);
        assert_eq!(v.id('z'), None);
    }

    #[test]
    fn roundtrip_unicode() {
        let text = "naïve café — ünïcödé ✓\n";
        let v = Vocab::from_text(text).unwrap();
        let ids = v.encode(text).unwrap();
        assert_eq!(v.decode(&ids, '_'), text);
    }

    #[test]
    fn prompt_gaps_become_mask() {
        let v = Vocab::from_text("abc ").unwrap();
        let ids = v.encode_prompt("a__ c", '_').unwrap();
        assert_eq!(ids[1], MASK_ID);
        assert_eq!(ids[2], MASK_ID);
        assert_eq!(v.decode(&ids, '?'), "a?? c");
        let ids = v.encode_prompt("a##c", '#').unwrap();
        assert_eq!(ids.iter().filter(|&&i| i == MASK_ID).count(), 2);
    }

    #[test]
    fn unknown_char_names_char_and_position() {
        let v = Vocab::from_text("abc").unwrap();
        let err = v.encode_prompt("ab_z", '_').unwrap_err();
        assert_eq!(err, VocabError::UnknownChar { ch: 'z', pos: 3 });
        assert!(err.to_string().contains("'z'") && err.to_string().contains("position 3"));
    }

    #[test]
    fn serde_roundtrip_as_string() {
        let v = Vocab::from_text("xyz\n").unwrap();
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, "\"\\nxyz\"");
        let back: Vocab = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.id('\n'), Some(1));
    }

    #[test]
    fn empty_text_is_an_error() {
        assert_eq!(Vocab::from_text(""), Err(VocabError::Empty));
    }
}
