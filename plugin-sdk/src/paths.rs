//! Dotted paths into JSON payloads, the way hook configs name fields:
//! `user.primaryEmail`, `data.roles.0.name` (a number indexes an array).

use serde_json::{Map, Value};

/// The value at `path`, if there is one.
pub fn get<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The value at `path`, mutably, if there is one.
pub fn get_mut<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Set the value at `path`, creating objects along the way (a non-object in
/// the way is replaced by an object).
pub fn set(value: &mut Value, path: &str, new: Value) {
    let mut keys = path.split('.').peekable();
    let mut current = value;
    while let Some(key) = keys.next() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let map = current.as_object_mut().expect("made an object above");
        if keys.peek().is_none() {
            map.insert(key.to_string(), new);
            return;
        }
        current = map.entry(key.to_string()).or_insert(Value::Null);
    }
}

/// Remove the value at `path`, returning it.
pub fn remove(value: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (get_mut(value, parent)?, last),
        None => (value, path),
    };
    match parent {
        Value::Object(map) => map.remove(last),
        Value::Array(items) => {
            let i = last.parse::<usize>().ok().filter(|i| *i < items.len())?;
            Some(items.remove(i))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_set_remove() {
        let mut v = json!({"user": {"primaryEmail": "a@b.c", "roles": [{"name": "admin"}]}});
        assert_eq!(get(&v, "user.primaryEmail"), Some(&json!("a@b.c")));
        assert_eq!(get(&v, "user.roles.0.name"), Some(&json!("admin")));
        assert_eq!(get(&v, "user.missing"), None);
        set(&mut v, "meta.tenant", json!("acme"));
        assert_eq!(v["meta"]["tenant"], "acme");
        assert_eq!(remove(&mut v, "user.primaryEmail"), Some(json!("a@b.c")));
        assert_eq!(get(&v, "user.primaryEmail"), None);
        assert_eq!(
            remove(&mut v, "user.roles.0"),
            Some(json!({"name": "admin"}))
        );
        assert_eq!(remove(&mut v, "nothing.here"), None);
    }
}
