// pollwatch station player: plays a camera's segments one after another.
// The playlist (camera -> segments with their URL, or null when the policy gives no copy) is
// embedded in the page as JSON; every segment URL is checked and logged by the server.
(function () {
  "use strict";
  const data = document.getElementById("playlist");
  const video = document.getElementById("player");
  const status = document.getElementById("player-status");
  if (!data || !video) {
    return;
  }
  const playlist = JSON.parse(data.textContent || "{}");
  let camera = null;
  let position = -1;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function mark() {
    document.querySelectorAll(".timeline .seg.playing").forEach(function (el) {
      el.classList.remove("playing");
    });
    const current = document.querySelector(
      '.timeline .seg[data-camera="' + CSS.escape(camera) + '"][data-index="' + position + '"]'
    );
    if (current) {
      current.classList.add("playing");
    }
  }

  function play(cameraId, index) {
    const segments = playlist[cameraId] || [];
    while (index < segments.length && !segments[index].url) {
      index += 1; // a segment without a copy for this user is skipped
    }
    if (index >= segments.length) {
      say("End of camera " + cameraId + "'s playable segments.");
      return false;
    }
    camera = cameraId;
    position = index;
    const segment = segments[index];
    video.dataset.camera = cameraId;
    video.dataset.sha256 = segment.sha256;
    video.src = segment.url;
    say("Camera " + cameraId + ": " + segment.start + " to " + segment.end +
        " (segment " + segment.sha256.slice(0, 12) + ")");
    mark();
    const started = video.play();
    if (started && typeof started.catch === "function") {
      started.catch(function () {
        say("Press play to start camera " + cameraId + ".");
      });
    }
    return true;
  }

  video.addEventListener("ended", function () {
    if (camera !== null) {
      play(camera, position + 1);
    }
  });
  video.addEventListener("error", function () {
    say("This segment could not be played (denied, missing or not decodable here).");
  });

  document.querySelectorAll(".timeline .seg").forEach(function (el) {
    el.addEventListener("click", function () {
      if (el.classList.contains("locked")) {
        say("The playback policy gives you no copy of this segment.");
        return;
      }
      play(el.dataset.camera, Number(el.dataset.index));
    });
  });

  window.pollwatchPlayer = { play: play };
})();
