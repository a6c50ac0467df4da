//! [`pymethods_with_fields!`]: the `#[pymethods]` block of a class that
//! wraps a Rust struct in `inner`, with a Python attribute per field of
//! that struct, then the class's own methods.
//!
//! A macro because pyo3 takes one `#[pymethods]` block per class (a second
//! one needs its `multiple-pymethods` feature and the `inventory` crate) and
//! expands no macro written inside that block, so the macro writes the
//! whole block; pyo3 reads the `#[getter]` and `#[setter]` attributes it
//! generates once it has expanded.

/// Writes `#[pymethods] impl Class { .. }` with a `#[getter]` per listed
/// field of `self.inner` and a `#[setter]` where one is named
/// (`field / set_field`), by kind of field:
///
/// - `str`: a `String` (read as `str`);
/// - `opt_str`: an `Option<String>`;
/// - `copy`: a `Copy` value of the type given after the colon;
/// - `dict`: a JSON object, read as a copy (`dict`) and set from a dict or
///   `None` (empty);
/// - `member`: an enum, read as the member of the Python enum class
///   `types(py).CLASS` for its `VALUE()` and set through `ARG`, as
///   `field: CLASS(VALUE, ARG)`.
///
/// The block also gets `to_dict()` (the wire object, through serde) and
/// the class method `from_dict(data)`, which raises `CodecError` "not a
/// WIRE: .." for a dict that is not one (`from_dict: "WIRE"`); both listed
/// first, with their doc comments.
///
/// Doc comments on an entry become the attribute's docstring. The methods
/// after the `fields { .. }` group are copied into the block as they are.
macro_rules! pymethods_with_fields {
    (
        impl $class:ident {
            fields {
                $(#[$to_doc:meta])* to_dict,
                $(#[$from_doc:meta])* from_dict: $wire:literal,
                str: [$($(#[$s_doc:meta])* $s:ident $(/ $s_set:ident)?),* $(,)?],
                opt_str: [$($(#[$o_doc:meta])* $o:ident $(/ $o_set:ident)?),* $(,)?],
                copy: [$($(#[$c_doc:meta])* $c:ident $(/ $c_set:ident)?: $c_ty:ty),* $(,)?],
                dict: [$($(#[$d_doc:meta])* $d:ident $(/ $d_set:ident)?),* $(,)?],
                member: [$(
                    $(#[$m_doc:meta])* $m:ident $(/ $m_set:ident)?:
                        $m_class:ident($m_value:ident, $m_arg:path)
                ),* $(,)?],
            }
            $($methods:tt)*
        }
    ) => {
        #[::pyo3::pymethods]
        impl $class {
            $(
                $(#[$s_doc])*
                #[getter]
                fn $s(&self) -> &str {
                    &self.inner.$s
                }
                $(
                    #[setter]
                    fn $s_set(&mut self, v: String) {
                        self.inner.$s = v;
                    }
                )?
            )*
            $(
                $(#[$o_doc])*
                #[getter]
                fn $o(&self) -> Option<&str> {
                    self.inner.$o.as_deref()
                }
                $(
                    #[setter]
                    fn $o_set(&mut self, v: Option<String>) {
                        self.inner.$o = v;
                    }
                )?
            )*
            $(
                $(#[$c_doc])*
                #[getter]
                fn $c(&self) -> $c_ty {
                    self.inner.$c
                }
                $(
                    #[setter]
                    fn $c_set(&mut self, v: $c_ty) {
                        self.inner.$c = v;
                    }
                )?
            )*
            $(
                $(#[$d_doc])*
                #[getter]
                fn $d<'py>(
                    &self,
                    py: ::pyo3::Python<'py>,
                ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::types::PyDict>> {
                    $crate::convert::map_to_py(py, &self.inner.$d)
                }
                $(
                    #[setter]
                    fn $d_set(
                        &mut self,
                        v: Option<&::pyo3::Bound<'_, ::pyo3::PyAny>>,
                    ) -> ::pyo3::PyResult<()> {
                        self.inner.$d = $crate::packet::payload_arg(v)?;
                        Ok(())
                    }
                )?
            )*
            $(
                $(#[$m_doc])*
                #[getter]
                fn $m<'py>(
                    &self,
                    py: ::pyo3::Python<'py>,
                ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                    let class = &$crate::pytypes::types(py)?.$m_class;
                    $crate::pytypes::member(py, class, self.inner.$m.$m_value())
                }
                $(
                    #[setter]
                    fn $m_set(&mut self, v: &::pyo3::Bound<'_, ::pyo3::PyAny>) -> ::pyo3::PyResult<()> {
                        self.inner.$m = $m_arg(v)?;
                        Ok(())
                    }
                )?
            )*

            $(#[$to_doc])*
            fn to_dict<'py>(
                &self,
                py: ::pyo3::Python<'py>,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                $crate::convert::serialize_to_py(py, &self.inner)
            }

            $(#[$from_doc])*
            #[classmethod]
            fn from_dict(
                _cls: &::pyo3::Bound<'_, ::pyo3::types::PyType>,
                data: &::pyo3::Bound<'_, ::pyo3::PyAny>,
            ) -> ::pyo3::PyResult<Self> {
                let value = $crate::convert::from_py(data)?;
                ::serde_json::from_value(value)
                    .map(|inner| $class { inner })
                    .map_err(|e| {
                        let message = format!("not a {}: {e}", $wire);
                        $crate::pytypes::error($crate::pytypes::ErrorKind::Codec, message)
                    })
            }

            $($methods)*
        }
    };
}

pub(crate) use pymethods_with_fields;
