// The simulator page: one member per tab (sessionStorage), every action posted to /simulator/api/say
// (which signs it and sends it through the real webhook), pushes polled from /simulator/api/pushes.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("config").textContent);
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  let openid = "";
  let cursor = 0;
  let polling = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }

  function safeUrl(url) {
    return /^(https?:\/\/|\/)/.test(url || "") ? url : "";
  }

  // Text with its links clickable and demo QR links shown as a QR image; all of it as text nodes.
  function richText(text) {
    const out = el("span", { class: "text" });
    const parts = String(text).split(/((?:https?|demo):\/\/[A-Za-z0-9._~:\/?#@!$&*+,;=%-]+)/);
    parts.forEach((part, i) => {
      if (i % 2 === 0) { out.appendChild(document.createTextNode(part)); return; }
      if (part.startsWith("demo://qr/")) {
        out.appendChild(el("span", { class: "qr-label", text: config.labels.qr }));
        out.appendChild(el("img", { class: "qr", src: "/simulator/static/qr.svg", alt: part, title: part }));
        return;
      }
      out.appendChild(el("a", { href: part, target: "_blank", rel: "noopener", text: part }));
    });
    return out;
  }

  function body(bubble) {
    if (bubble.kind === "news") {
      return (bubble.articles || []).map((a) => el("a", { class: "article", href: safeUrl(a.url) || "#", target: "_blank" }, [
        ...(safeUrl(a.picurl) ? [el("img", { src: a.picurl, alt: "" })] : []),
        el("strong", { text: a.title }), el("span", { text: a.description }),
      ]));
    }
    if (bubble.kind === "card") {
      return [el("span", { class: "card" }, [el("strong", { text: bubble.title }),
        ...(bubble.lines || []).map((l) => el("span", { class: "line", text: l }))])];
    }
    return [richText(bubble.text || "")];
  }

  function show(side, bubble) {
    const kind = side === "me" ? "me" : bubble.kind === "note" ? "note" : bubble.channel === "reply" ? "bot" : "bot push";
    const inner = el("div", { class: "bubble" });
    if (side !== "me" && bubble.kind !== "note") {
      inner.appendChild(el("span", { class: "channel", text: config.channels[bubble.channel] || bubble.channel }));
    }
    body(bubble).forEach((n) => inner.appendChild(n));
    const row = el("div", { class: "msg " + kind, "data-channel": bubble.channel || "me" }, [inner]);
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  async function call(path, options) {
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.message || String(response.status));
    }
    return data;
  }

  async function say(action, echo) {
    if (echo) show("me", { kind: "text", text: echo });
    try {
      const data = await call("/simulator/api/say", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ openid: openid, ...action }),
      });
      show("bot", data.reply);
    } catch (err) {
      show("bot", { kind: "note", text: config.labels.error.replace("{detail}", err.message) });
    }
    poll();
  }

  let inflight = null;
  function poll() {
    // One poll at a time, so two never show the same push twice.
    inflight = (inflight || Promise.resolve()).then(pollOnce);
    return inflight;
  }

  async function pollOnce() {
    const me = openid;
    try {
      const data = await call(`/simulator/api/pushes?openid=${encodeURIComponent(me)}&after=${cursor}`);
      if (me !== openid) return;
      data.pushes.forEach((p) => show("bot", p));
      cursor = data.last;
    } catch (err) { /* the next poll tries again */ }
  }

  async function loadMenu() {
    const nav = $("menu");
    nav.replaceChildren();
    const data = await call(`/simulator/api/menu?openid=${encodeURIComponent(openid)}`);
    data.button.forEach((top) => {
      const group = el("div", { class: "top" });
      const press = el("button", { type: "button", text: top.name });
      group.appendChild(press);
      const subs = top.sub_button || [];
      if (subs.length) {
        const list = el("div", { class: "subs" });
        subs.forEach((b) => list.appendChild(menuButton(b, group)));
        group.appendChild(list);
        press.addEventListener("click", () => {
          nav.querySelectorAll(".top.open").forEach((g) => { if (g !== group) g.classList.remove("open"); });
          group.classList.toggle("open");
        });
      } else {
        press.addEventListener("click", () => act(top));
      }
      nav.appendChild(group);
    });
  }

  function menuButton(button, group) {
    const node = el("button", { type: "button", "data-key": button.key || "", text: button.name });
    node.addEventListener("click", () => { group.classList.remove("open"); act(button); });
    return node;
  }

  function act(button) {
    if (button.type === "click") say({ kind: "click", key: button.key }, "［" + button.name + "］");
    else if (button.url) window.open(button.url, "_blank", "noopener");
  }

  async function choose(id) {
    openid = id;
    sessionStorage.setItem("simulator-openid", id);
    $("openid").value = id;
    log.replaceChildren();
    cursor = 0;
    await loadMenu();
    await loadPeople();
    await poll();
  }

  async function loadPeople() {
    const data = await call("/simulator/api/people");
    const select = $("who");
    select.replaceChildren();
    const ids = data.people.map((p) => p.openid);
    if (!ids.includes(openid)) ids.unshift(openid);
    ids.forEach((id) => {
      const label = id === config.manager ? `${config.labels.manager} (${id})` : id;
      const option = el("option", { value: id, text: label });
      if (id === openid) option.selected = true;
      select.appendChild(option);
    });
  }

  function freshOpenid() {
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let id = "oSIM";
    for (let i = 0; i < 24; i += 1) id += chars[Math.floor(Math.random() * chars.length)];
    return id;
  }

  $("compose").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("input").value;
    if (!text.trim()) return;
    $("input").value = "";
    say({ kind: "text", content: text }, text);
  });
  $("who").addEventListener("change", (e) => choose(e.target.value));
  $("openid").addEventListener("change", (e) => choose(e.target.value.trim()));
  $("new-member").addEventListener("click", () => choose(freshOpenid()));
  $("follow").addEventListener("click", () => say({ kind: "subscribe" }, "［" + $("follow").textContent + "］"));
  $("unfollow").addEventListener("click", () => say({ kind: "unsubscribe" }, "［" + $("unfollow").textContent + "］"));
  $("scan").addEventListener("click", () => {
    const scene = $("scene").value.trim();
    say({ kind: "scan", key: scene }, "［" + $("scan").textContent + " " + scene + "］");
  });
  $("image").addEventListener("click", () => say({ kind: "image" }, "［" + $("image").textContent + "］"));
  $("location").addEventListener("click", () => say({ kind: "location", latitude: 31.2304, longitude: 121.4737 },
    "［" + $("location").textContent + "］"));
  const run = $("travel-run");
  if (run) {
    run.addEventListener("click", async () => {
      const at = $("travel-at").value + ":00" + config.offset;
      try {
        const data = await call("/simulator/api/travel", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ job: $("travel-job").value, at: at }),
        });
        $("travel-result").textContent = data.message;
      } catch (err) {
        $("travel-result").textContent = config.labels.error.replace("{detail}", err.message);
      }
      poll();
    });
  }

  const wanted = new URLSearchParams(location.search).get("openid");
  choose(wanted || sessionStorage.getItem("simulator-openid") || freshOpenid());
  polling = setInterval(poll, 1500);
  window.simulatorPolling = polling;
})();
