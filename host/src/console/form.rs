//! Form bodies as ordered name/value pairs: the console's forms repeat
//! names (a hook's steps, its events), which a struct cannot hold.

use axum::body::Bytes;

/// A form body's fields, in order.
#[derive(Debug, Default, Clone)]
pub(super) struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parse an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &Bytes) -> Self {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, if not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
