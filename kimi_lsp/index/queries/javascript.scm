; kimi-lsp additions for JavaScript (also loaded for TypeScript and TSX).

(method_definition
  name: (property_identifier) @name
  (#eq? @name "constructor")) @definition.constructor

(import_statement source: (string (string_fragment) @import))
(export_statement source: (string (string_fragment) @import))
(call_expression
  function: (identifier) @_require
  arguments: (arguments . (string (string_fragment) @import))
  (#eq? @_require "require"))

(import_specifier name: (identifier) @name) @reference.import
