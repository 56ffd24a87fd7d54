; kimi-lsp additions for Ruby.

(assignment left: (constant) @name) @definition.constant

(call
  method: (identifier) @_require
  arguments: (argument_list . (string (string_content) @import))
  (#any-of? @_require "require" "require_relative" "load"))
