//! JSON values (payloads, stats, records) to Python objects and back.

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::pytypes::{ErrorKind, error};

/// Nesting a Python value may have on its way into JSON (a self-containing
/// list must end in an error, not a stack overflow).
const MAX_DEPTH: usize = 64;

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => number_to_py(py, n)?,
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

/// A JSON object as a Python dict (keys in order).
pub(crate) fn map_to_py<'py>(
    py: Python<'py>,
    map: &Map<String, Value>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, to_py(py, v)?)?;
    }
    Ok(dict)
}

fn number_to_py<'py>(py: Python<'py>, n: &Number) -> PyResult<Bound<'py, PyAny>> {
    if let Some(i) = n.as_i64() {
        return i.into_bound_py_any(py);
    }
    if let Some(u) = n.as_u64() {
        return u.into_bound_py_any(py);
    }
    let text = n.to_string();
    if text.contains(['.', 'e', 'E']) {
        return n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py);
    }
    // An integer beyond 64 bits, kept exact: Python's int parses it.
    py.get_type::<PyInt>().call1((text,))
}

/// A Python value (dict with string keys, list, tuple, str, int, float,
/// bool, None, or an enum member, taken by its value) as JSON.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_depth(obj, 0)
}

/// A Python dict as a JSON object.
pub(crate) fn map_from_py(obj: &Bound<'_, PyAny>) -> PyResult<Map<String, Value>> {
    match from_py(obj)? {
        Value::Object(m) => Ok(m),
        _ => Err(error(ErrorKind::Config, "expected a dict with string keys")),
    }
}

fn from_py_depth(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(error(
            ErrorKind::Config,
            format!("value nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.downcast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        let text = obj.str()?.to_string();
        return serde_json::from_str(&text)
            .map_err(|e| error(ErrorKind::Config, format!("integer {text}: {e}")));
    }
    if let Ok(f) = obj.downcast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            error(
                ErrorKind::Config,
                format!("{v} has no JSON form (NaN or infinite)"),
            )
        });
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.downcast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key = k
                .downcast::<PyString>()
                .map_err(|_| error(ErrorKind::Config, format!("dict key {k} is not a string")))?;
            map.insert(key.to_str()?.to_owned(), from_py_depth(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for item in obj.try_iter()? {
            items.push(from_py_depth(&item?, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(value) = obj.getattr(pyo3::intern!(obj.py(), "value")) {
        return from_py_depth(&value, depth + 1);
    }
    Err(error(
        ErrorKind::Config,
        format!("{} has no JSON form", obj.get_type().name()?),
    ))
}

/// A serialisable Rust value as Python objects (through its JSON form).
pub(crate) fn serialize_to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v)
        .map_err(|e| error(ErrorKind::Internal, format!("cannot convert: {e}")))?;
    to_py(py, &value)
}
