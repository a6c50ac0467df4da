//! The Python-side classes the native module hands out or raises: the
//! enums, the exceptions and the plain record types, all defined in the
//! package's Python files and looked up once per interpreter.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyDict;

/// The classes, imported on first use (the package's Python modules import
/// the native module, so they cannot be imported at its initialisation).
pub(crate) struct Types {
    pub(crate) ping_type: Py<PyAny>,
    pub(crate) priority: Py<PyAny>,
    pub(crate) routing_mode: Py<PyAny>,
    pub(crate) ping_decision: Py<PyAny>,
    errors: Py<PyAny>,
    records: Py<PyAny>,
}

static TYPES: GILOnceCell<Types> = GILOnceCell::new();

/// The cached classes.
pub(crate) fn types(py: Python<'_>) -> PyResult<&'static Types> {
    TYPES.get_or_try_init(py, || {
        let enums = py.import("tibet_iot._enums")?;
        let get = |name: &str| enums.getattr(name).map(Bound::unbind);
        Ok(Types {
            ping_type: get("PingType")?,
            priority: get("Priority")?,
            routing_mode: get("RoutingMode")?,
            ping_decision: get("PingDecision")?,
            errors: py.import("tibet_iot._errors")?.into_any().unbind(),
            records: py.import("tibet_iot._types")?.into_any().unbind(),
        })
    })
}

/// The enum member of class `cls` whose value is `value`.
pub(crate) fn member<'py>(
    py: Python<'py>,
    cls: &Py<PyAny>,
    value: impl IntoPyObject<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    cls.bind(py).call1((value,))
}

/// The kinds of error this package raises (classes of `tibet_iot._errors`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ErrorKind {
    InvalidDid,
    Config,
    Bind,
    KeyFile,
    NotRunning,
    Send,
    Codec,
    Vouch,
    Internal,
}

impl ErrorKind {
    fn class_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidDid => "InvalidDidError",
            ErrorKind::Config => "ConfigError",
            ErrorKind::Bind => "BindError",
            ErrorKind::KeyFile => "KeyFileError",
            ErrorKind::NotRunning => "NotRunningError",
            ErrorKind::Send => "SendError",
            ErrorKind::Codec => "CodecError",
            ErrorKind::Vouch => "VouchError",
            ErrorKind::Internal => "InternalError",
        }
    }
}

/// A Python exception of `kind` with `message`.
pub(crate) fn error(kind: ErrorKind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::with_gil(|py| {
        let class = types(py).and_then(|t| t.errors.bind(py).getattr(kind.class_name()));
        match class {
            Ok(class) => match class.call1((message.clone(),)) {
                Ok(instance) => PyErr::from_value(instance),
                Err(e) => e,
            },
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

/// An instance of the record class `name` of `tibet_iot._types`, built
/// from keyword arguments.
pub(crate) fn record<'py>(
    py: Python<'py>,
    name: &str,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    types(py)?
        .records
        .bind(py)
        .getattr(name)?
        .call((), Some(kwargs))
}
