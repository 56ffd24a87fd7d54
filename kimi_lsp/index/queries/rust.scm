; kimi-lsp additions for Rust.

(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(type_item name: (type_identifier) @name) @definition.type
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(field_declaration name: (field_identifier) @name) @definition.field

; Not `use serde;`: one name alone is another crate (a module of this one comes in with
; `mod name;`, and the 2018 edition's `use name;` of it would say nothing new).
(use_declaration argument: (_) @import (#not-match? @import "^[A-Za-z_][A-Za-z0-9_]*$"))
(mod_item name: (identifier) @import !body)

(type_identifier) @name @reference.type
(call_expression function: (scoped_identifier name: (identifier) @name)) @reference.call

; The names a `use` brings in (`use crate::errors::{ValError, ValResult}`): the file names
; what it imports, as Python's `from m import name` does.
(use_declaration argument: (scoped_identifier name: (identifier) @name) @reference.import)
(use_declaration argument: (use_as_clause path: (scoped_identifier name: (identifier) @name)) @reference.import)
(use_list (identifier) @name @reference.import)
(use_list (scoped_identifier name: (identifier) @name) @reference.import)
(use_list (use_as_clause path: [(identifier) (scoped_identifier name: (identifier))] @name) @reference.import)

; A trait's required methods (`fn get_as<T>(&self, key: &K) -> Option<T>;`), not only the
; ones with a default body: what an outline of the trait lists.
(declaration_list (function_signature_item name: (identifier) @name) @definition.method)
