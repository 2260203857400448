// The WebAuthn ceremonies of the hosted prompt: options come from the
// server as JSON with base64url binary fields; answers go back the same way.
"use strict";
(function () {
  var main = document.querySelector("main[data-prompt]");
  if (!main) { return; }
  var base = "/prompt/" + main.dataset.prompt;
  var csrf = main.dataset.csrf;
  var status = document.getElementById("status");

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "note";
  }
  function b64u(buf) {
    var s = "", bytes = new Uint8Array(buf);
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function post(path, body) {
    return fetch(base + path, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) {
          if (j.error && j.error.redirect) { window.location.assign(j.error.redirect); }
          throw new Error((j.error && j.error.message) || "something went wrong");
        }
        return j;
      });
    });
  }
  // submit posts a form of fields (and the CSRF token) to path, as if
  // the page had it.
  function submit(path, fields) {
    var f = document.createElement("form");
    f.method = "post";
    f.action = base + path;
    fields.csrf = csrf;
    Object.keys(fields).forEach(function (k) {
      var h = document.createElement("input");
      h.type = "hidden"; h.name = k; h.value = fields[k];
      f.appendChild(h);
    });
    document.body.appendChild(f);
    f.submit();
  }
  function remembered() {
    var r = document.getElementById("remember");
    return !!(r && r.checked);
  }

  var use = document.getElementById("use-passkey");
  if (use) {
    use.addEventListener("click", function () {
      say("Waiting for your passkey…");
      post("/passkey/login/begin").then(function (opts) {
        opts.challenge = unb64u(opts.challenge);
        (opts.allowCredentials || []).forEach(function (c) { c.id = unb64u(c.id); });
        return navigator.credentials.get({publicKey: opts});
      }).then(function (cred) {
        var credential = {
          id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: b64u(cred.response.clientDataJSON),
            authenticatorData: b64u(cred.response.authenticatorData),
            signature: b64u(cred.response.signature),
            userHandle: cred.response.userHandle ? b64u(cred.response.userHandle) : null
          }
        };
        if (use.dataset.change) {
          // A settings change: the server answers with the page it
          // shows after a code (new backup codes, 2FA off, the next step).
          submit("/change/verify", {credential: JSON.stringify(credential)});
          return;
        }
        return post("/passkey/login/finish", {remember: remembered(), credential: credential}).then(function (j) {
          say("Verified. Returning…");
          window.location.assign(j.redirect);
        });
      }).catch(function (e) { say("The passkey did not work: " + e.message, true); });
    });
  }

  var add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", function () {
      var name = document.getElementById("passkey-name").value;
      say("Follow your browser's steps to create the passkey…");
      post("/passkey/register/begin").then(function (opts) {
        opts.challenge = unb64u(opts.challenge);
        opts.user.id = unb64u(opts.user.id);
        (opts.excludeCredentials || []).forEach(function (c) { c.id = unb64u(c.id); });
        return navigator.credentials.create({publicKey: opts});
      }).then(function (cred) {
        var transports = cred.response.getTransports ? cred.response.getTransports() : [];
        return post("/passkey/register/finish", {name: name, credential: {
          id: cred.id, rawId: b64u(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: b64u(cred.response.clientDataJSON),
            attestationObject: b64u(cred.response.attestationObject),
            transports: transports
          }
        }});
      }).then(function (j) {
        if (j.backup_codes && j.backup_codes.length) {
          var list = document.getElementById("codes");
          j.backup_codes.forEach(function (c) {
            var li = document.createElement("li");
            li.textContent = c;
            list.appendChild(li);
          });
          document.getElementById("codes-box").hidden = false;
          say("Passkey added");
          var cont = document.createElement("form");
          cont.method = "post";
          cont.action = base + "/done";
          var h = document.createElement("input");
          h.type = "hidden"; h.name = "csrf"; h.value = csrf;
          var b = document.createElement("button");
          b.type = "submit"; b.className = "primary"; b.textContent = "Continue";
          cont.appendChild(h); cont.appendChild(b);
          document.getElementById("codes-box").appendChild(cont);
        } else {
          window.location.assign(base + "?added=1");
        }
      }).catch(function (e) { say("The passkey was not added: " + e.message, true); });
    });
  }
})();
