; kimi-lsp additions for Java.

(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(annotation_type_declaration name: (identifier) @name) @definition.interface
(constructor_declaration name: (identifier) @name) @definition.constructor
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @definition.field
(enum_constant name: (identifier) @name) @definition.constant

(import_declaration (scoped_identifier) @import)

(type_identifier) @name @reference.type

; The class (or, `import static`, the member) an import names, as Python's `from m import
; name`: not a wildcard's package (`import a.b.*;`, where the last named child is `*`).
(import_declaration (scoped_identifier name: (identifier) @name) @reference.import .)
