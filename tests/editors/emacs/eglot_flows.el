;;; eglot_flows.el --- kimi-lsp through eglot, as a user drives it  -*- lexical-binding: t; coding: utf-8 -*-

;; Loaded by tests/editors/test_emacs.py into a daemon Emacs whose init.el is the Emacs block
;; of docs/editors.md as written.  It opens $KIMI_TEST_FILE, runs M-x eglot, then the steps
;; named in $KIMI_TEST_STEPS (explain, refactor, cancel) through M-x eglot-code-actions and
;; M-x kimi-cancel, and writes what it saw to $KIMI_TEST_REPORT as JSON for the test to check.
;;
;; Nothing here handles kimi-specific messages: the advice below only observes (what eglot
;; sends, which kimi/stream notifications arrive) or stands in for the user (the menu choice;
;; a y/n prompt, which the doc's config must not cause, is recorded and answered).

(require 'cl-lib)

(defvar kimi-test-report nil "What the steps saw (a plist, written out as JSON).")
(defvar kimi-test-prompts nil "Every y/n prompt Emacs showed, newest first.")
(defvar kimi-test-stream nil "(KIND . MESSAGE) of each kimi/stream notification, newest first.")

(defun kimi-test-note (key value)
  (setq kimi-test-report (plist-put kimi-test-report key value)))

(defun kimi-test-finish (code)
  (kimi-test-note :prompts (vconcat (reverse kimi-test-prompts)))
  (kimi-test-note :messages (with-current-buffer (messages-buffer) (buffer-string)))
  (with-temp-file (getenv "KIMI_TEST_REPORT")
    (insert (json-serialize kimi-test-report :null-object nil :false-object :json-false)))
  (kill-emacs code))

(defun kimi-test-wait (predicate what &optional seconds)
  "Process output until PREDICATE holds; fail after SECONDS (60) waiting for WHAT."
  (let ((deadline (+ (float-time) (or seconds 60))))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or (funcall predicate) (error "Timed out waiting for %s" what))))

;; Observers and stand-ins for the user.
(dolist (prompt '(y-or-n-p yes-or-no-p))
  (advice-add prompt :override
              (lambda (question &rest _) (push question kimi-test-prompts) t)))

(with-eval-after-load 'eglot
  (advice-add 'jsonrpc-connection-send :before
              (lambda (_connection &rest message)
                (when (equal (format "%s" (plist-get message :method)) ":initialize")
                  (kimi-test-note :init-options
                                  (plist-get (plist-get message :params)
                                             :initializationOptions)))))
  (advice-add 'eglot-handle-request :around
              (lambda (handle server method &rest params)
                (let ((answer (apply handle server method params)))
                  (when (eq method 'workspace/configuration)
                    (kimi-test-note :configuration answer))
                  answer)))
  (advice-add 'eglot-handle-notification :before
              (lambda (_server method &rest params)
                (when (eq method 'kimi/stream)
                  (push (cons (plist-get params :kind) (plist-get params :message))
                        kimi-test-stream)))))

(defun kimi-test-pick (title)
  "M-x eglot-code-actions at point (or on the region), choosing TITLE from its menu."
  (let ((last-nonmenu-event ?\r)          ; typed on a keyboard: eglot asks with completing-read
        offered)
    (cl-letf (((symbol-function 'completing-read)
               (lambda (_prompt collection &rest _)
                 (setq offered (mapcar #'car collection))
                 (or (car (member title offered))
                     (error "No action %S among %S" title offered)))))
      (prog1 (call-interactively #'eglot-code-actions)
        (kimi-test-note :offered (vconcat offered))))))

(defun kimi-test-goto-body (definition)
  "Put point on the blank space that indents DEFINITION's first body line."
  (goto-char (point-min))
  (search-forward definition)
  (forward-line 1))

(defun kimi-test-explain ()
  (kimi-test-goto-body "def add")
  (let ((result (kimi-test-pick "Kimi: Explain")))
    (kimi-test-note :explain-text (plist-get result :text))
    (kimi-test-note :explain-symbol (plist-get result :symbol))))

(defun kimi-test-refactor ()
  (goto-char (point-min))
  (search-forward "def add")
  (mark-defun)                            ; C-M-h: the function is the region
  (let ((result (kimi-test-pick "Kimi: Refactor… add type hints")))
    (deactivate-mark)
    (kimi-test-note :refactor-applied (plist-get result :applied))
    (kimi-test-note :refactor-reason (plist-get result :reason)))
  (save-buffer)
  (kimi-test-note :buffer (buffer-substring-no-properties (point-min) (point-max))))

(defun kimi-test-cancel ()
  (kimi-test-goto-body "def twice")
  (setq kimi-test-stream nil)
  ;; eglot 1.9 waits 10 s (jsonrpc-default-request-timeout) for a command and then reports
  ;; "Timed out"; the action goes on.  The user here gives up after 1 s.
  (condition-case err
      (let ((jsonrpc-default-request-timeout 1))
        (kimi-test-pick "Kimi: Explain")
        (kimi-test-note :slow-explain "answered"))
    (jsonrpc-error (kimi-test-note :slow-explain (format "%S" (cdr err)))))
  (kimi-test-wait (lambda () (assoc "text" kimi-test-stream)) "the slow answer's first text")
  (kimi-test-note :cancel (call-interactively #'kimi-cancel))     ; M-x kimi-cancel
  (kimi-test-wait (lambda () (assoc "end" kimi-test-stream)) "the run's end")
  (kimi-test-note :cancel-end (cdr (assoc "end" kimi-test-stream)))
  (kimi-test-note :text-pieces-before-end
                  (cl-count "text" kimi-test-stream :key #'car :test #'equal)))

(defun kimi-test-run ()
  (find-file (getenv "KIMI_TEST_FILE"))
  (call-interactively #'eglot)                                     ; M-x eglot
  (kimi-test-wait #'eglot-current-server "eglot to connect")
  (let ((server (eglot-current-server)))
    (kimi-test-note :server (plist-get (eglot--server-info server) :name))
    (kimi-test-note :project (expand-file-name (project-root (eglot--project server))))
    ;; the actions need the workspace index, which the server builds after initialize
    (kimi-test-goto-body "def add")
    (kimi-test-wait (lambda () (eglot-code-actions (point))) "code actions")
    (dolist (step (split-string (getenv "KIMI_TEST_STEPS") ","))
      (funcall (intern (concat "kimi-test-" step)))
      (kimi-test-note :steps-done (vconcat (plist-get kimi-test-report :steps-done)
                                           (list step))))
    (eglot-shutdown server)))

(condition-case err
    (progn (kimi-test-run) (kimi-test-finish 0))
  (error (kimi-test-note :error (error-message-string err))
         (kimi-test-finish 1)))

;;; eglot_flows.el ends here
