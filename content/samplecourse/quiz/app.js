// A self-contained quiz: no libraries and no network, so it works inside an
// offline box and in a sandboxed frame that may forbid storage.
"use strict";

var questions = [
  {
    q: "What gives water the energy to evaporate?",
    answers: ["The heat of the sun", "The light of the moon", "Salt in the sea"],
    correct: 0,
    why: "The sun warms oceans, lakes and rivers, and warm water turns into water vapour."
  },
  {
    q: "How do clouds form?",
    answers: ["Wind blows dust into the sky", "Water vapour cools and condenses into tiny droplets", "Rain freezes in the air"],
    correct: 1,
    why: "High in the sky the air is cold, so vapour condenses into droplets that gather as clouds."
  },
  {
    q: "Rain, snow, sleet and hail are all kinds of ...",
    answers: ["evaporation", "condensation", "precipitation"],
    correct: 2,
    why: "Precipitation is any water that falls from clouds to the ground."
  },
  {
    q: "Where does most of the water that evaporates come from?",
    answers: ["The oceans", "Puddles on the road", "Ice in the freezer"],
    correct: 0,
    why: "Oceans cover most of the Earth, so most evaporation happens there."
  },
  {
    q: "Plants give off water vapour through their leaves. What is this called?",
    answers: ["Collection", "Transpiration", "Precipitation"],
    correct: 1,
    why: "Transpiration adds water vapour to the air, just like evaporation."
  }
];

var current = 0;
var score = 0;

function el(id) { return document.getElementById(id); }

// Focus moves only after the learner acts: grabbing it on load would pull
// the portal page around the frame this runs in.
function show(index, moveFocus) {
  var item = questions[index];
  el("progress").textContent = "Question " + (index + 1) + " of " + questions.length;
  el("question").textContent = item.q;
  el("feedback").textContent = "";
  el("feedback").className = "";
  el("next").hidden = true;
  var box = el("answers");
  while (box.firstChild) { box.removeChild(box.firstChild); }
  item.answers.forEach(function (text, i) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", function () { choose(i); });
    box.appendChild(b);
  });
  if (moveFocus) { box.firstChild.focus(); }
}

function choose(i) {
  var item = questions[current];
  var buttons = el("answers").querySelectorAll("button");
  buttons.forEach(function (b) { b.disabled = true; });
  buttons[item.correct].classList.add("correct");
  var fb = el("feedback");
  if (i === item.correct) {
    score++;
    fb.textContent = "Correct! " + item.why;
    fb.className = "correct";
  } else {
    buttons[i].classList.add("wrong");
    fb.textContent = "Not quite. " + item.why;
    fb.className = "wrong";
  }
  var next = el("next");
  next.textContent = current + 1 < questions.length ? "Next question" : "See my score";
  next.hidden = false;
  next.focus();
}

function finish() {
  el("card").hidden = true;
  el("progress").textContent = "";
  el("result").hidden = false;
  el("score").textContent = "You answered " + score + " of " + questions.length + " questions correctly.";
  el("again").focus();
}

el("next").addEventListener("click", function () {
  current++;
  if (current < questions.length) {
    show(current, true);
  } else {
    finish();
  }
});

el("again").addEventListener("click", function () {
  current = 0;
  score = 0;
  el("result").hidden = true;
  el("card").hidden = false;
  show(current, true);
});

show(current, false);
