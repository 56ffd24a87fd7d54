; kimi-lsp additions for Go.

(type_spec name: (type_identifier) @name type: (struct_type)) @definition.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface
(type_alias name: (type_identifier) @name) @definition.type
(const_spec name: (identifier) @name) @definition.constant
(source_file (var_declaration (var_spec name: (identifier) @name) @definition.variable))
(field_declaration name: (field_identifier) @name) @definition.field

(import_spec path: (interpreted_string_literal) @import)

; An interface's methods (`Key() []byte` in `type Iterator interface {...}`): what an outline
; of the interface lists, as a struct's methods are.
(method_elem name: (field_identifier) @name) @definition.method
