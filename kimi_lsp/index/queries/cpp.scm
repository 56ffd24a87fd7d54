; kimi-lsp additions for C++ (then ours for C, upstream C tags, upstream C++ tags).

(namespace_definition name: (namespace_identifier) @name) @definition.module
(alias_declaration name: (type_identifier) @name) @definition.type
(field_declaration
  declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(function_definition
  declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(function_declarator
  declarator: (qualified_identifier name: (identifier) @name)) @definition.method

(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
(new_expression type: (type_identifier) @name) @reference.class
