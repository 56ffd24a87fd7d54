; kimi-lsp additions for PHP (before upstream, so methods are methods).

(method_declaration name: (name) @name) @definition.method
(const_declaration (const_element (name) @name)) @definition.constant
(enum_declaration name: (name) @name) @definition.enum

(namespace_use_clause (qualified_name) @import)
(require_once_expression (_ (string_content) @import))
(require_expression (_ (string_content) @import))
(include_expression (_ (string_content) @import))
(include_once_expression (_ (string_content) @import))

(base_clause (name) @name) @reference.class
(base_clause (qualified_name (name) @name)) @reference.class
